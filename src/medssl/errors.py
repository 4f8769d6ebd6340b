"""The one exception type a user sees as a plain message instead of a traceback."""

import logging
import sys


class MedsslError(Exception):
    """Bad input or an unrecoverable run condition, described in one sentence for the user."""


def run_or_exit(task, *args, **kwargs):
    """`task(*args, **kwargs)`; a MedsslError becomes one logged line and exit status 1, no
    traceback."""
    try:
        return task(*args, **kwargs)
    except MedsslError as error:
        logging.getLogger("medssl").error("%s", error)
        sys.exit(1)
