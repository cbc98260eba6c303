"""simulparams.dat → Params (inputs.md §3, driver.md §1.2), and the writer simparam.py emulates.

The original reads 58 (name, value) pairs positionally and never looks at the names, so a missing
line silently shifts every later value. We read positionally too, but check each name and each
value, so such a file fails with one line naming the entry.
"""

import dataclasses

import numpy as np

from .errors import InputError, shown
from .scan import Scanner, file_name

# (name, kind) in file order; kind: "u64" → int, "f32" → numpy.float32, "str" → str
SCHEMA = (
    ("seed", "u64"), ("shuffle_num", "u64"), ("thread_num", "u64"), ("tol_fixit", "f32"),
    ("maxiter_grad", "u64"), ("maxiter_fix", "u64"), ("initdx", "f32"), ("sfreq", "u64"),
    ("input_name", "str"), ("input_name_valid", "str"), ("input_name_test", "str"),
    ("output_name", "str"), ("predict_name_valid", "str"), ("predict_name_test", "str"),
    ("test_log", "str"), ("test_log_final", "str"), ("learn_num", "u64"), ("valid_num", "u64"),
    ("test_num", "u64"), ("mini_batch_size", "u64"), ("neuron_num", "u64"), ("input_num", "u64"),
    ("output_num", "u64"), ("shared_weights_num", "u64"), ("shared_biases_num", "u64"),
    ("graph_datas", "str"), ("logic_datas", "str"), ("fixwb_datas", "str"),
    ("shared_w_datas", "str"), ("shared_b_datas", "str"), ("alpha", "f32"),
    ("train_lossfunction_type", "str"), ("valid_metric_type", "str"),
    ("valid_metric_type_2", "str"), ("range_div", "u64"), ("optimizer", "u64"),
    ("nesterov", "u64"), ("grad_alpha", "f32"), ("adam_alpha", "f32"), ("adam_beta1", "f32"),
    ("adam_beta2", "f32"), ("adam_eps", "f32"), ("lr_scheduler", "u64"),
    ("cyclic_momentum", "u64"), ("pcr", "f32"), ("base_momentum", "f32"),
    ("max_momentum", "f32"), ("div_factor", "f32"), ("final_div_factor", "f32"),
    ("step_size", "u64"), ("lr_gamma", "f32"), ("early_stopping", "u64"),
    ("ff_optimization", "u64"), ("clipping", "u64"), ("clipping_threshold", "f32"),
    ("loaddatas", "u64"), ("load_backup", "str"), ("save_best_model", "str"),
)

# other spellings of a name: the manual's and simparam.py's (which writes the typo)
ALIASES = {"shared_biases_num": ("shared_bias_num",), "clipping_threshold": ("clipping_treshold",)}
# the name simparam.py writes, where it differs from ours
_WRITTEN_NAME = {"clipping_threshold": "clipping_treshold"}
# simparam.py leaves an empty line after these entries
_BLANK_AFTER = {"mini_batch_size", "shared_b_datas", "alpha", "range_div", "adam_eps",
                "early_stopping", "ff_optimization", "clipping_threshold"}
MAX_STRING = 99                 # the original's 100-byte string buffers

Params = dataclasses.make_dataclass(
    "Params",
    [(name, {"u64": int, "f32": np.float32, "str": str}[kind]) for name, kind in SCHEMA],
    frozen=True)
Params.__doc__ = "The 58 run parameters in file order (docs/architecture.md)."
Params.__module__ = __name__      # make_dataclass says 'types' (pydoc, repr, pickle)


def _entries(scan):
    """(name, line, value) of the 58 entries in file order; InputError at the first bad one."""
    for number, (name, kind) in enumerate(SCHEMA, start=1):
        entry = f"entry {number} '{name}'"
        names = (name,) + ALIASES.get(name, ())
        if scan.peek() not in names:
            raise scan.error(f"the parameter name '{name}' (entry {number} of {len(SCHEMA)})")
        line = scan.line
        scan.token(name)
        if scan.line != line:       # the original would take the next line's name as the value
            raise InputError(f"missing value for {entry}", scan.path, line)
        if kind == "u64":
            value = scan.u64(f"a non-negative integer for {entry}", whole=True)
        elif kind == "f32":
            value = scan.f32(f"a number for {entry}", whole=True)
        else:
            text = scan.token(f"a file name or word for {entry}")
            if len(text) > MAX_STRING:          # bytes, as the original's char buffers count
                raise InputError(f"value of {entry} is {len(text)} characters long; the "
                                 f"original allows at most {MAX_STRING}", scan.path, line)
            if "\0" in text:                    # C would cut the name there
                raise InputError(f"value of {entry} contains a NUL byte", scan.path, line)
            value = file_name(text)
        yield name, line, value


def read_params(path):
    """Read a simulparams.dat file; any malformed entry is an InputError naming its line."""
    return Params(**{name: value for name, _, value in _entries(Scanner(path))})


def entry_line(path, name):
    """The line of entry `name` in the parameter file `path`, or None where that file cannot
    be read as one (parameters made in code): errors about a value name the line it is on."""
    if path is None:
        return None
    try:
        return next(line for entry, line, _ in _entries(Scanner(path)) if entry == name)
    except (InputError, StopIteration):
        return None


def entry_error(path, name, message):
    """An InputError about entry `name` of the parameter file `path`, naming its line."""
    return InputError(message, path, entry_line(path, name))


# choice entries: accepted values and what each means; other values are refused (the original
# silently runs something else for them: see docs/compatibility.md)
CHOICES = {
    "valid_metric_type": {"AUC": "", "F1": "", "MCC": "", "TPR": ""},
    "valid_metric_type_2": {"F1": "", "MCC": "", "TPR": ""},
    "optimizer": {1: "momentum SGD", 2: "Adam", 3: "Adamax"},
    "nesterov": {0: "off", 1: "look-ahead, with optimizer 1"},
    "lr_scheduler": {0: "constant", 1: "one-cycle", 2: "cosine annealing", 3: "step decay"},
    "cyclic_momentum": {0: "off", 1: "on, with lr_scheduler 1 or 2"},
    "clipping": {0: "off", 1: "clip to clipping_threshold"},
    "ff_optimization": {0: "fixed-point iteration", 1: "feed-forward levels"},
    "loaddatas": {0: "random start", 1: "load load_backup"},
}
# the loss types in the order of their engine ids (engine/loss_ids.py numbers them from here)
LOSS_NAMES = ("MSE", "MAE", "multiclassification_crossentropy", "multilabeling_crossentropy",
              "bce_multilabeling")
CHOICES["train_lossfunction_type"] = dict.fromkeys(LOSS_NAMES, "")
# thresholds are f32(-4 + t*8/f32(range_div)): beyond 2^24 f32(range_div) is no longer the
# integer itself and the steps are finer than float32 resolves near ±4, so a larger range_div only
# repeats thresholds while the sweep's arrays grow past what memory holds
RANGE_DIV_MAX = 2**24


def _choice_error(path, name, value):
    """'unknown <entry> <value>; expected one of <accepted values and their meaning>'."""
    listed = ", ".join(f"{v} ({what})" if what else str(v) for v, what in CHOICES[name].items())
    if name == "train_lossfunction_type":                  # the original's words
        return entry_error(path, name, f"Wrong loss function: '{shown(value)}' (expected one "
                                       f"of {listed})")
    shown_value = f"'{shown(value)}'" if isinstance(value, str) else str(value)
    return entry_error(path, name, f"unknown {name} {shown_value}; expected one of {listed}")


def validate(params, path, minibatch_num=None):
    """Reject what would crash the original later (inputs Q5, Q14, scheduler settings) or what it would
    silently run as something else (unknown choice values): one line naming the entry's line.

    `path` names the parameter file. sfreq is only used when training (maxiter_grad > 0).
    """
    p = params

    def fail(name, message):
        raise entry_error(path, name, message)

    if p.mini_batch_size == 0:
        fail("mini_batch_size", "mini_batch_size must be positive (the original divides by it)")
    if p.learn_num == 0:
        fail("learn_num", "learn_num must be positive (the original's shuffle divides by it)")
    if not 1 <= max(p.input_num, p.output_num) <= p.neuron_num or min(p.input_num, p.output_num) < 1:
        culprit = "neuron_num" if max(p.input_num, p.output_num) > p.neuron_num else (
            "input_num" if p.input_num < 1 else "output_num")
        fail(culprit, f"neuron_num ({p.neuron_num}) must be at least input_num "
                      f"({p.input_num}) and output_num ({p.output_num}), all positive")
    if p.output_num != p.input_num:
        fail("output_num", f"output_num ({p.output_num}) must equal input_num ({p.input_num}): "
                           "the autoencoder's targets are its inputs")
    if not np.isfinite(p.initdx):
        fail("initdx", f"initdx must be a finite number, got {float(p.initdx)} (the initial "
                       "weights are drawn from [-initdx, initdx])")
    for name in CHOICES:
        if getattr(p, name) not in CHOICES[name]:
            raise _choice_error(path, name, getattr(p, name))
    if p.clipping == 1 and p.maxiter_grad > 0 and not p.clipping_threshold >= 0:
        # the original clips in two steps (> θ → θ, then < −θ → −θ): a negative θ sets every
        # component to |θ|, NaN clips nothing
        fail("clipping_threshold", f"clipping_threshold must be at least 0 with clipping 1, got "
                                   f"{float(p.clipping_threshold):g} (the original would set "
                                   "every gradient component to |threshold|, or clip nothing "
                                   "for nan)")
    if p.range_div > RANGE_DIV_MAX:
        fail("range_div", f"range_div {p.range_div} is above {RANGE_DIV_MAX} (2^24): float32 "
                          "thresholds in [-4, 4] cannot be finer, only more numerous")
    if minibatch_num is None:
        minibatch_num = -(-p.learn_num // p.mini_batch_size)
    if p.maxiter_grad > 0 and not 1 <= p.sfreq <= minibatch_num:
        fail("sfreq", f"sfreq must be between 1 and the number of minibatches "
                      f"({minibatch_num}), got {p.sfreq}")
    scheduler_cut(p, minibatch_num, source=path)  # step_size 0, pcr out of range


def scheduler_cut(params, minibatch_num, source=None):
    """The step where lr_scheduler 1 turns / 2 restarts (driver.md §4.1), 0 for the others.

    Refuses (InputError naming the entry's line in `source`) the settings on which the
    original's scheduler is undefined: a cut that is no 64-bit step count, a cut of 0 for
    lr_scheduler 2 (it divides by it), step_size 0 for lr_scheduler 3. Here, not in schedule.py,
    so that reading and checking the parameter file needs nothing from the training driver."""
    p, f32 = params, np.float32
    kind = int(p.lr_scheduler)
    total = int(p.maxiter_grad) * int(minibatch_num)
    cut = 0
    if kind in (1, 2) and total > 0:
        with np.errstate(over="ignore", invalid="ignore"):     # checked just below
            value = f32(f32(total) * f32(p.pcr))
            if kind == 2:
                value = f32(value + f32(1.0))
        if not -np.inf < float(value) < 2**64:      # NaN, ±inf, too large: undefined in C
            raise entry_error(source, "pcr", f"pcr {float(p.pcr):g} puts the scheduler's cut "
                                             f"at {float(value):g} steps, not a 64-bit step "
                                             "count (undefined in the original)")
        cut = max(int(value), 0)
        if kind == 2 and cut == 0:
            raise entry_error(source, "pcr", "pcr must be > -1/(maxiter_grad*minibatches) for "
                                             "lr_scheduler 2 (the original divides by zero)")
    if kind == 3 and int(p.step_size) == 0:
        raise entry_error(source, "step_size", "step_size must be positive with lr_scheduler 3 "
                                               "(the original divides by it)")
    return cut


def format_value(value):
    """A value as simparam.py writes it: ints and strings as is, floats like Python's str.

    float32 values use their shortest round-trip digits; an exponent is written `1.0e-5` as the
    simparam.py literals are.
    """
    if isinstance(value, (float, np.floating)):
        text = repr(float(str(np.float32(value))))    # shortest float32 digits, Python's style
        if "e" in text:
            mant, exp = text.split("e")
            mant = mant if "." in mant else mant + ".0"
            text = f"{mant}e{int(exp)}"
        return text
    return str(value)


def write_params(path, params):
    """Write `params` in simparam.py's layout: name in 27 columns, value, blank-line groups."""
    lines = []
    for name, _ in SCHEMA:
        lines.append(f"{_WRITTEN_NAME.get(name, name):<27}{format_value(getattr(params, name))}\n")
        if name in _BLANK_AFTER:
            lines.append("\n")
    with open(path, "w") as fh:
        fh.write("".join(lines))
