"""Run folders, their atomic writes, the SQLite index, the runner, resume and sweeps."""
