"""The one exception type that means "the user gave us something wrong".

The command line turns it into a single line on stderr and exit code 2; anything
else that escapes is a bug (exit 1, with a traceback worth reporting).
"""

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input: arguments, config values, missing or corrupt data files."""
