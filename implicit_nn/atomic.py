"""Whole-file writes that a crash cannot leave half done: temp file beside the target, then rename."""

import os

from .errors import InputError


def write_atomic(path, text, failure="cannot write the file"):
    """Write `text` to `path` via a temporary file in the same folder (same permissions as a plain
    open() would give); an OSError becomes a one-line InputError starting with `failure`."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise InputError(f"{failure}: {exc.strerror or exc}", path) from None
