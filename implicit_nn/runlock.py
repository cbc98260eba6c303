"""One run per set of outputs: an advisory lock file beside output_name while a run writes.

Two runs on the same outputs would interleave their log rows and overwrite each other's backups;
the original never notices. The lock file holds `PID HOST`; one whose process is gone (a killed
run) is stale and taken over.
"""

import os
import socket

from .atomic import pid_alive
from .errors import InputError


class RunLock:
    """`with RunLock(output_name):` holds `<output_name>.lock` for the body, or refuses."""

    def __init__(self, output_name):
        self.path = f"{os.fspath(output_name)}.lock"
        self.owner = f"{os.getpid()} {socket.gethostname()}"
        self.held = False

    def __enter__(self):
        for _ in range(2):                      # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._remove_if_stale()
                continue
            except OSError as exc:
                raise InputError(f"cannot create the run's lock file: {exc.strerror or exc}",
                                 self.path) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(self.owner + "\n")
            self.held = True
            return self
        raise InputError("another run took this lock file just now; its outputs are in use",
                         self.path)

    def _remove_if_stale(self):
        """Remove the lock of a run that is gone; refuse (InputError) while it may be running."""
        try:
            with open(self.path) as fh:
                words = fh.read().split()
        except FileNotFoundError:
            return                              # its run just ended
        except OSError as exc:
            raise InputError(f"cannot read the run's lock file: {exc.strerror or exc}",
                             self.path) from None
        if len(words) == 2 and words[0].isdigit():
            pid, host = int(words[0]), words[1]
            if host == socket.gethostname() and not pid_alive(pid):
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                return
            where = f"PID {pid}" + ("" if host == socket.gethostname() else f" on {host}")
            raise InputError(f"another run ({where}) is writing these outputs; wait for it to "
                             "end, or remove this lock file if it is gone", self.path)
        raise InputError("a run's lock file that names no process: another run may be writing "
                         "these outputs; remove this file if none is", self.path)

    def __exit__(self, *exc):
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        return False
