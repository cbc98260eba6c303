"""The one exception type a user ever sees: a one-line message naming file, line and expectation."""


class InputError(Exception):
    """Bad input or an impossible request; the CLI prints it as one line and exits 1."""

    def __init__(self, message, path=None, line=None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(str(self))

    def __str__(self):
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        return where + self.message
