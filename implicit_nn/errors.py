"""The one exception type a user ever sees: a one-line message naming file, line and expectation."""

SHOWN_LIMIT = 60                # characters of a quoted token in an error line


def shown(text, limit=SHOWN_LIMIT):
    """`text` fit for one error line: non-printable characters escaped (bytes that are not UTF-8,
    kept as surrogates, as \\xNN), cut to `limit` characters (None: no cut) with '...'."""
    cut = limit is not None and len(text) > limit
    out = []
    for ch in text[:limit] if cut else text:
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out) + ("..." if cut else "")


class InputError(Exception):
    """Bad input or an impossible request; the CLI prints it as one line and exits 1."""

    exit_status = 1

    def __init__(self, message, path=None, line=None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(str(self))

    def __str__(self):
        where = ""
        if self.path is not None:
            where = shown(self.path, None) + (f":{self.line}" if self.line is not None else "") + ": "
        return where + shown(self.message, None)


class NoFiniteModel(InputError):
    """Training ran, but no validation ever had a finite model (the loss exploded or the
    parameters went non-finite at once): one line, exit status 3, and no backup, predictions or
    final metrics; the logs hold what happened."""

    exit_status = 3
