"""The error a user can fix: the CLI prints its message on one line, with no traceback."""


class UserError(Exception):
    """Bad input or an unusable environment, described in words the user can act on."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (its type name if it has none): what a
    UserError quotes from a library's error, the rest going to the log."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
