"""Whole-file writes that a crash cannot leave half done: temp file beside the target, flushed to
disk, then renamed; the temp files of a killed run are removed by the next run."""

import os
import re

from .errors import InputError


def _temp_path(path):
    return f"{path}.tmp{os.getpid()}"


def write_atomic(path, text, failure="cannot write the file"):
    """Write `text` (str, or bytes written as they are) to `path` via a temporary file in the
    same folder (same permissions as a plain open() would give), fsync'd before the rename and the
    folder after it, so that after a crash or power loss `path` holds the old or the new content,
    never part of it. An OSError becomes a one-line InputError starting with `failure`; the temp
    file never stays behind."""
    path = os.fspath(path)
    tmp = _temp_path(path)
    binary = isinstance(text, bytes)
    try:
        with open(tmp, "wb") if binary else open(tmp, "w", encoding="ascii", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _sync_folder(os.path.dirname(path) or ".")
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{failure}: {exc.strerror or exc}", path) from None
        raise


def _sync_folder(folder):
    """Make the rename durable; a file system that cannot fsync a folder simply skips it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pid_alive(pid):
    """Whether process `pid` exists on this machine; our own pid counts as gone (what it left
    was left by an earlier process that had the same number)."""
    if pid == os.getpid() or not 0 < pid < 2**31:        # 0 and -1 would mean process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path):
    """Delete the `<path>.tmp<pid>` files that a killed run's writes of `path` left behind; the
    temp file of a live process is left alone."""
    folder, name = os.path.split(os.fspath(path))
    pattern = re.compile(re.escape(name) + r"\.tmp([0-9]+)")
    for candidate in os.listdir(folder or "."):
        m = pattern.fullmatch(candidate)
        if m and not pid_alive(int(m.group(1))):
            try:
                os.remove(os.path.join(folder, candidate))
            except FileNotFoundError:
                pass
