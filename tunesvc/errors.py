"""The error a user can fix: the CLI prints its message on one line, with no traceback."""


class UserError(Exception):
    """Bad input or an unusable environment, described in words the user can act on."""
