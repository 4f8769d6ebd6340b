"""The one exception type a user sees as a plain message instead of a traceback."""


class MedsslError(Exception):
    """Bad input or an unrecoverable run condition, described in one sentence for the user."""
