"""The one exception type that means "the user gave us something wrong".

The command line turns it into a single line on stderr and exit code 2; anything
else that escapes is a bug (exit 1, with a traceback worth reporting).
"""

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input: arguments, config values, missing or corrupt data files."""


def first_line(e: BaseException, limit: int = 160, default: str | None = None) -> str:
    """The first line of an exception's message, cut to `limit` characters, for a one-line
    error of ours; `default` (else the exception's type name) when it has no message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if lines:
        return lines[0][:limit]
    return type(e).__name__ if default is None else default
