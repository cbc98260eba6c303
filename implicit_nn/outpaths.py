"""Where a run writes, checked at start-up: no output clobbers an input or another output, and
every output can really be written, so a bad path is found before hours of training, not after.

The original opens each output only when it first writes to it and never compares paths: a
prediction file named like the training data silently replaces it, two logs on one path
interleave, and a read-only backup folder fails after the last epoch.
"""

import os

from .errors import InputError
from .params import entry_error

LOGS = ("output_name", "test_log", "test_log_final")            # appended to
WHOLE_FILES = ("predict_name_valid", "predict_name_test", "save_best_model")   # written whole
OUTPUTS = LOGS + WHOLE_FILES
DATA_AND_NETWORK = ("input_name", "input_name_valid", "input_name_test", "graph_datas",
                    "logic_datas", "fixwb_datas", "shared_w_datas", "shared_b_datas")


def _same_file(a, b):
    """Whether two paths name one file: the same resolved path, or (both existing) one inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inputs(params, source):
    """(entry, path) of every file the run reads: the parameter file, data, network files, and
    the loaded backup, except where save_best_model re-saves it (the original's load mode)."""
    found = [("the parameter file", source)] if source and os.path.isfile(source) else []
    found += [(entry, getattr(params, entry)) for entry in DATA_AND_NETWORK]
    if params.loaddatas == 1:
        found.append(("load_backup", params.load_backup))
    return found


def check_outputs(params, source):
    """One-line error naming the entry's line for an output that is a folder, whose folder is
    missing or not writable, that is an unwritable log, that equals an input (except the
    load-mode re-save of load_backup as save_best_model) or another output."""
    for k, entry in enumerate(OUTPUTS):
        path = getattr(params, entry)
        folder = os.path.dirname(path) or "."
        if os.path.isdir(path):
            raise entry_error(source, entry, f"{entry} '{path}' is a folder, not a file")
        if not os.path.isdir(folder):
            raise entry_error(source, entry, f"{entry}: folder '{folder}' does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise entry_error(source, entry, f"{entry}: folder '{folder}' is not writable")
        if entry in LOGS and os.path.exists(path) and not os.access(path, os.W_OK):
            raise entry_error(source, entry, f"{entry}: '{path}' is not writable")
        for other in OUTPUTS[:k]:
            if _same_file(path, getattr(params, other)):
                raise entry_error(source, entry, f"{entry} '{path}' is also {other}: two "
                                                 "outputs would overwrite each other")
        for what, read in _inputs(params, source):
            if what == "load_backup" and entry == "save_best_model":
                continue
            if _same_file(path, read):
                raise entry_error(source, entry, f"{entry} '{path}' is also {what}, an input: "
                                                 "the run would overwrite it")


def check_extra_output(path, option, params, source):
    """The same checks for a file a command-line option adds (--stats, --checkpoint): writable
    folder, not a folder itself, not one of the run's inputs or outputs. Errors name `option`."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a folder, not a file", option)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"folder '{folder}' does not exist or is not writable", option)
    for what, other in [(e, getattr(params, e)) for e in OUTPUTS] + _inputs(params, source):
        if _same_file(path, other):
            raise InputError(f"'{path}' is also {what}: it would be overwritten", option)
