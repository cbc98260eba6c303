"""simulparams.dat → Params (inputs.md §3, driver.md §1.2), and the writer simparam.py emulates.

The original reads 58 (name, value) pairs positionally and never looks at the names, so a missing
line silently shifts every later value. We read positionally too, but check each name and each
value, so such a file fails with one line naming the entry.
"""

import dataclasses

import numpy as np

from .errors import InputError
from .scan import Scanner

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


def read_params(path):
    """Read a simulparams.dat file; any malformed entry is an InputError naming its line."""
    scan = Scanner(path)
    values = {}
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
            values[name] = scan.u64(f"a non-negative integer for {entry}", whole=True)
        elif kind == "f32":
            values[name] = scan.f32(f"a number for {entry}", whole=True)
        else:
            text = scan.token(f"a file name or word for {entry}")
            if len(text) > MAX_STRING:
                raise InputError(f"value of {entry} is {len(text)} characters long; the "
                                 f"original allows at most {MAX_STRING}", scan.path, line)
            values[name] = text
    return Params(**values)


def validate(params, path, minibatch_num=None):
    """Reject what would crash the original later (Q5, Q14, scheduler settings): one line each.

    `path` names the parameter file. sfreq is only used when training (maxiter_grad > 0).
    """
    p = params
    if p.mini_batch_size == 0:
        raise InputError("mini_batch_size must be positive (the original divides by it)", path)
    if p.learn_num == 0:
        raise InputError("learn_num must be positive (the original's shuffle divides by it)",
                         path)
    if not 1 <= max(p.input_num, p.output_num) <= p.neuron_num or min(p.input_num, p.output_num) < 1:
        raise InputError(f"neuron_num ({p.neuron_num}) must be at least input_num "
                         f"({p.input_num}) and output_num ({p.output_num}), all positive", path)
    if p.output_num != p.input_num:
        raise InputError(f"output_num ({p.output_num}) must equal input_num ({p.input_num}): "
                         "the autoencoder's targets are its inputs", path)
    if minibatch_num is None:
        minibatch_num = -(-p.learn_num // p.mini_batch_size)
    if p.maxiter_grad > 0 and not 1 <= p.sfreq <= minibatch_num:
        raise InputError(f"sfreq must be between 1 and the number of minibatches "
                         f"({minibatch_num}), got {p.sfreq}", path)
    scheduler_cut(p, minibatch_num, source=path)  # step_size 0, pcr out of range


def scheduler_cut(params, minibatch_num, source=None):
    """The step where lr_scheduler 1 turns / 2 restarts (driver.md §4.1), 0 for the others.

    Refuses (InputError naming `source`) the settings on which the original's scheduler is
    undefined: a cut that is no 64-bit step count, a cut of 0 for lr_scheduler 2 (it divides by
    it), step_size 0 for lr_scheduler 3. Here, not in schedule.py, so that reading and checking
    the parameter file needs nothing from the training driver."""
    p, f32 = params, np.float32
    kind = int(p.lr_scheduler)
    total = int(p.maxiter_grad) * int(minibatch_num)
    cut = 0
    if kind in (1, 2) and total > 0:
        value = f32(f32(total) * f32(p.pcr))
        if kind == 2:
            value = f32(value + f32(1.0))
        if not float(value) < 2**64:                # NaN, inf, too large: undefined in C
            raise InputError(f"pcr {float(p.pcr):g} puts the scheduler's cut at "
                             f"{float(value):g} steps, not a 64-bit step count (undefined in "
                             "the original)", source)
        cut = max(int(value), 0)
        if kind == 2 and cut == 0:
            raise InputError("pcr must be > -1/(maxiter_grad*minibatches) for lr_scheduler 2 "
                             "(the original divides by zero)", source)
    if kind == 3 and int(p.step_size) == 0:
        raise InputError("step_size must be positive with lr_scheduler 3 (the original "
                         "divides by it)", source)
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
