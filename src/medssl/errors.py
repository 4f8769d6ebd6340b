"""The one exception type a user sees as a plain message instead of a traceback."""

import logging
import re
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


def composition_sentence(error: Exception) -> str:
    """Hydra's composition error (an unknown key, a missing option) as one sentence: its first
    line, and the options Hydra lists for a missing one. For the CLIs that compose with
    Hydra's compose API, where Hydra does not print the error itself."""
    text = str(error).strip()
    if type(error).__module__.startswith("yaml"):  # a config file that is not valid YAML
        return f"a config file is not valid YAML: {' '.join(text.split())}."
    first = text.splitlines()[0] if text else type(error).__name__
    options = re.search(r"Available options in '[^']+':\n((?:\t.*\n?)+)", text)
    if options:
        names = ", ".join(line.strip() for line in options.group(1).splitlines())
        first = f"{first.rstrip('.')}; the options are {names}."
    return first
