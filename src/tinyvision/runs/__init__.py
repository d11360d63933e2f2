"""Run folders, records, the index, the runner, resume and sweeps; and `tv.runs(out)`.

`import tinyvision as tv; tv.runs(out)` must give the index of the runs under `out`, yet
`tinyvision.runs` is this package (importing any submodule sets it as the attribute).
So the package's module type gets a `__call__`: the one name serves both.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path


class _CallablePackage(types.ModuleType):
    def __call__(self, out: str | Path = "runs"):
        """The index of the runs under `out` as a pandas DataFrame, newest first."""
        import pandas as pd

        from tinyvision.errors import UserError
        from tinyvision.runs import index

        root = Path(out)
        if not root.is_dir():  # a typo must not read as "no runs yet"
            raise UserError(f"{root}: no such folder (the --out the runs were written to)")
        return pd.DataFrame(index.rows(root))


sys.modules[__name__].__class__ = _CallablePackage
