"""Console progress of a run (driver.md §8); nothing reads it, so it only has to be readable.

API: ``Console(quiet=False, stream=sys.stdout)`` with
  done(label, seconds)          final line of a start-up step ("Loading the test data  | 100.00% ...")
  compiling(label)              numba compiles now (a first run after an install): done() follows
  epoch_start() / epoch_end()   per-epoch bookkeeping (a tty gets the original's newline)
  minibatch(epoch, epochs, k, M, le_minibatch, le, t_mb)
  validation(epoch, epochs, k, M, le_sample, le, t_mb, vm, test_mcc, test_f1, bvm, et)
  engine(name, reason)          which engine runs and why (auto: whether a GPU was found)
  resumed(path, epoch, k)       a run continued from a checkpoint
  early_stop() / exploding(le)   the two ways a run ends early
On a terminal the strings are the original's (backspace redraws; minibatch redraws thinned to
10 per second); otherwise one plain line per validation, so batch-system logs stay readable;
quiet prints nothing at all.
"""

import math
import sys
import time

import numpy as np

from implicit_nn.cformat import cfmt

ERASE = "\b \b"
REDRAW_SECONDS = 0.1


def progress_bar(rate, length=10):
    """'[' + '='*k + '>' + '.'*(length-k) + '] ' with k = round(f32(length*rate)), half away from 0."""
    k = int(math.floor(float(np.float32(length * np.float32(rate))) + 0.5))
    return "[" + "=" * k + ">" + "." * (length - k) + "] "


def _rate(done, total):
    return np.float32(done) / np.float32(total)


def status_valid(epoch, epochs, le, vm, test_mcc, test_f1, bvm, et):
    """The str_valid part of the original's validation display ('% [' printed literally, driver Q4)."""
    return (f" {epoch * 100 // epochs:3d}% [{epoch}/{epochs}] LE: {cfmt('%.2E', le)}"
            f" VM: {cfmt('%.3f', vm)} MCC: {cfmt('%.3f', test_mcc)} TF1: {cfmt('%.3f', test_f1)}"
            f" | BVM: {cfmt('%.3f', bvm)} | ET: {et:.1f}s")


def _eta(t_mb, k, M):
    return t_mb * M / (k + 1) - t_mb + 0.01


class Console:
    def __init__(self, quiet=False, stream=None):
        self.stream = sys.stdout if stream is None else stream
        self.quiet = quiet
        self.tty = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.str_valid = ""
        self.last_draw = -math.inf

    def _write(self, text):
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def done(self, label, seconds):
        prefix = ERASE * 400 + "\r\r" if self.tty else ""
        self._write(f"{prefix}{label:<35.35}| 100.00% ET: {seconds:.2f}s\n")

    def compiling(self, label):
        """A step that can take half a minute: said before it starts (on a terminal, done()
        then redraws the line)."""
        note = "once after an install or an update; numba keeps them in its cache"
        self._write(f"{label} ({note}) ..." + ("" if self.tty else "\n"))

    def epoch_start(self):
        self.str_valid = ""

    def epoch_end(self):
        if self.tty:
            self._write("\n")

    def early_stop(self):
        self._write("\nEarly Stopping limit reached.\n" if self.tty else "Early Stopping limit reached.\n")

    def exploding(self, le, blown=""):
        """The original's line, then why: the epoch's training loss `le` is NaN or infinite, or
        the parameters named by `blown` ('weights', 'biases', both) hold a NaN or inf."""
        self._write("\nExploding iteration.\n" if self.tty else "Exploding iteration.\n")
        why = (f"The {blown} went non-finite (NaN or infinite)" if blown else
               f"The training loss is {'NaN' if math.isnan(le) else 'infinite'}")
        self._write(f"{why}; training stops and the best model so far is evaluated.\n")

    def warning(self, line):
        """A line of its own (on a terminal after the status line it interrupts)."""
        self._write(f"\n{line}\n" if self.tty else f"{line}\n")

    def engine(self, name, reason):
        self._write(f"Engine: {name}; {reason}\n")

    def resumed(self, path, epoch, minibatch):
        """A run continued from a checkpoint, at minibatch `minibatch` (0-based) of `epoch`."""
        self._write(f"Resuming from {path}: epoch {epoch}, minibatch {minibatch + 1}\n")

    def minibatch(self, epoch, epochs, k, M, le_minibatch, le, t_mb):
        """Status line after minibatch k (0-based): its own per-element loss, or the epoch's on the last."""
        if not self.tty:
            return
        now = time.monotonic()
        last = k == M - 1
        if not last and now - self.last_draw < REDRAW_SECONDS:
            return
        self.last_draw = now
        if last:
            middle = f" [{M}/{M}] LE: {cfmt('%.2E', le)} ET: {t_mb:.1f}s | "
        else:
            middle = (f" [{k + 1}/{M}] LE: {cfmt('%.2E', le_minibatch)} ET: {t_mb:.1f}s "
                      f"ETA: {_eta(t_mb, k, M):.1f}s | ")
        self._write(ERASE * 400 + "\r" + progress_bar(_rate(k + 1, M)) + middle
                    + progress_bar(_rate(epoch, epochs)) + self.str_valid)

    def validation(self, epoch, epochs, k, M, le_sample, le, t_mb, vm, test_mcc, test_f1, bvm, et):
        """Validation display; le_sample is the minibatch's per-sample loss (driver Q13)."""
        self.str_valid = status_valid(epoch, epochs, le, vm, test_mcc, test_f1, bvm, et)
        if self.tty:
            if k == M - 1:
                middle = f" [{M}/{M}] LE: {cfmt('%.2E', le)} ET: {t_mb:.1f}s"
            else:
                middle = (f" [{k + 1}/{M}] LE: {cfmt('%.2E', le_sample)} ET: {t_mb:.1f}s "
                          f"ETA: {_eta(t_mb, k, M):.1f}s")
            self._write(ERASE * 800 + "\r" + progress_bar(_rate(k + 1, M)) + middle + " | "
                        + progress_bar(_rate(epoch, epochs)) + self.str_valid)
        else:
            self._write(f"epoch {epoch}/{epochs} minibatch {k + 1}/{M} LE: {cfmt('%.2E', le)} "
                        f"VM: {cfmt('%.6f', vm)} BVM: {cfmt('%.6f', bvm)} test MCC: "
                        f"{cfmt('%.3f', test_mcc)} TF1: {cfmt('%.3f', test_f1)} ET: {et:.1f}s\n")


class Progress:
    """One self-redrawing status line for work over many items (sweep runs, summarized runs).

    Drawn only on a terminal (redraws thinned to 10 per second, the last one always); elsewhere
    silent, so logs and pipes get only the results. note() prints a line above it."""

    def __init__(self, label, total, stream=None):
        self.stream = sys.stdout if stream is None else stream
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label, self.total = label, total
        self.shown, self.last_draw = "", -math.inf

    def update(self, done, detail=""):
        now = time.monotonic()
        if not self.tty or (done < self.total and now - self.last_draw < REDRAW_SECONDS):
            return
        self.last_draw = now
        rate = done / self.total if self.total else 1.0
        self.shown = f"{self.label} {progress_bar(rate)}{done}/{self.total} {detail}".rstrip()
        self.stream.write("\r" + self.shown + "\x1b[K")
        self.stream.flush()

    def note(self, line):
        """A line that stays (a finished or failed item), above the status line on a terminal."""
        if self.tty:
            self.stream.write("\r\x1b[K" + line + "\n" + self.shown)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self.shown = ""
