"""Seeded one-mutation cases of the bundled example's inputs, and the outcome rules they must obey.

A case is a copy of the bundled example (trimmed to one short epoch, with the outputs of a first
run already there) in which ONE thing is changed: a parameter value, a token of a network, data
or backup file, a line dropped or doubled, the file cut short or replaced by bytes. It then runs
`train`, `predict --load` or `check`. Case k is a pure function of (seed, k), so a
failing case can be replayed alone (tests/test_fuzz.py says how).
"""

import contextlib
import io
import os
import random
import re
import shutil
import signal
import traceback
import warnings
from pathlib import Path

from implicit_nn.cli import main
from implicit_nn.params import SCHEMA

ROOT = Path(__file__).resolve().parents[1]
PARAMS = "inputs/simulparams.dat"
BACKUP = "outputs/backup_best_autoencoder_small_1.dat"
# the bundled example, one short epoch: every successful case is a real, quick training run
BASE_CHANGES = {"maxiter_grad": "1", "learn_num": "192", "valid_num": "160", "test_num": "160",
                "sfreq": "3", "shuffle_num": "100", "thread_num": "1"}
# values that are valid but make a run long, as they would the original's (not a hang to find)
SLOW_ABOVE = {"maxiter_grad": 3, "shuffle_num": 10**6, "maxiter_fix": 1000, "range_div": 10**6,
              "sfreq": 64}

INTS = ["0", "1", "2", "3", "4", "7", "007", "+5", "-1", "-0", "18446744073709551615",
        "18446744073709551616", "9223372036854775808", "9" * 5000, "1.5", "1e3", "0x10", "abc",
        "nan", ""]
FLOATS = ["0", "-1", "1e-45", "10", "1e30", "1e39", "-1e39", "nan", "-nan", "inf", "-inf",
          "0x1p-3", "1e", "abc", "1" * 5000, "0." + "0" * 5000 + "1", "1e-4000", ""]
WORDS = ["AUC", "F1", "MCC", "TPR", "f1", "auc", "MSE", "MAE", "bce_multilabeling",
         "multiclassification_crossentropy", "multilabeling_crossentropy", "x", ""]
NAMES = ["", "missing.dat", "examples", "outputs", "outputs/", "outputs/new.dat",
         "donn\u00e9es/x.dat", "a\x01b", "x" * 99, "x" * 100, "/", "nowhere/x.dat", "-", "."]
TOKENS = ["0", "1", "-1", "2", "3", "9", "12", "99", "1000", "18446744073709551615",
          "9223372036854775808", "9223372036854775809", "18446744073709551616", "9" * 5000,
          "nan", "-nan", "inf", "-inf", "1e39", "1e-45", "0x1p3", "x", "###", ";", "1;", "0.5",
          "\x00", "\u00e9", "\x1b[31m", "q" * 200000, ""]


# other valid settings a case may start from, so that one mutation also reaches their code
VARIANTS = [{"optimizer": "2"}, {"optimizer": "3"}, {"lr_scheduler": "1", "cyclic_momentum": "1"},
            {"lr_scheduler": "3"}, {"nesterov": "0"}, {"clipping": "1"},
            {"valid_metric_type": "AUC", "valid_metric_type_2": "MCC"},
            {"train_lossfunction_type": "MAE"}, {"loaddatas": "1"}]


def _set_entries(text, entries):
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in entries:
            line = f"{words[0]:<27}{entries[words[0]]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def base_params_text():
    """The bundled parameter file with BASE_CHANGES applied (same layout)."""
    return _set_entries((ROOT / PARAMS).read_text(), BASE_CHANGES)


def make_base(folder):
    """The example's files under `folder`, plus the outputs of one run (the backup among them)."""
    folder = Path(folder)
    shutil.copytree(ROOT / "examples/small/data", folder / "examples/small/data")
    shutil.copytree(ROOT / "examples/small/network", folder / "examples/small/network")
    (folder / "inputs").mkdir()
    (folder / "outputs").mkdir()
    (folder / PARAMS).write_text(base_params_text())
    rc, err, _, _ = run_in(folder, ["train", "--quiet", "--backend", "cpu", PARAMS])
    assert rc == 0 and err == "", err
    return folder


# ---- mutations: each takes (rng, bytes) and returns new bytes -----------------------------------
def _tokens(data):
    return [m.span() for m in re.finditer(rb"\S+", data)]


def _replace_token(rng, data, pool):
    spans = _tokens(data)
    if not spans:
        return rng.choice(pool).encode("utf-8")
    a, b = rng.choice(spans)
    return data[:a] + rng.choice(pool).encode("utf-8") + data[b:]


def _line_op(rng, data, op):
    lines = data.splitlines(keepends=True)
    if not lines:
        return b"\n"
    i = rng.randrange(len(lines))
    if op == "drop":
        del lines[i]
    elif op == "double":
        lines.insert(i, lines[i])
    else:                                  # swap with the next line
        j = min(i + 1, len(lines) - 1)
        lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def mutate_bytes(rng, data):
    """One generic change of a file's content."""
    kind = rng.choice(["token"] * 6 + ["delete", "split", "drop", "double", "swap", "cut",
                                        "empty", "bytes", "append"])
    if kind == "token":
        return _replace_token(rng, data, TOKENS)
    if kind in ("delete", "split"):
        spans = _tokens(data)
        if not spans:
            return data
        a, b = rng.choice(spans)
        return data[:a] + data[b:] if kind == "delete" else data[:a] + b"\n" + data[a:]
    if kind in ("drop", "double", "swap"):
        return _line_op(rng, data, kind)
    if kind == "cut":
        return data[:rng.randrange(len(data) + 1)]
    if kind == "empty":
        return b""
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    return data + rng.choice([b"1\n", b"junk\n", b"\n\n", b"0 ### 1 ### 0\n", b"\xff\xfe"])


def mutate_params(rng, text):
    """A new value for one entry (kind-aware), or a generic change of the file."""
    if rng.random() < 0.25:
        return mutate_bytes(rng, text.encode()).decode("latin-1"), None
    lines = text.splitlines()
    index = {line.split()[0]: i for i, line in enumerate(lines) if line.split()}
    name, kind = rng.choice(SCHEMA)
    key = name if name in index else "clipping_treshold"
    if kind == "u64":
        value = rng.choice(INTS)
    elif kind == "f32":
        value = rng.choice(FLOATS)
    else:
        others = [lines[i].split()[1] for i in index.values() if len(lines[i].split()) > 1]
        value = rng.choice(WORDS + NAMES + others)
    limit = SLOW_ABOVE.get(name)
    if limit is not None and _above(value, limit):
        value = str(limit)
    lines[index[key]] = f"{key:<27}{value}"
    return "\n".join(lines) + "\n", (name, value)


def _above(value, limit):
    digits = value.lstrip("+").lstrip("0")
    return re.fullmatch(r"[0-9]*", digits) and (len(digits) > 18 or int(digits or 0) > limit)


def tame(data):
    """A parameter file's bytes with every SLOW_ABOVE entry capped at its limit, whatever
    mutation produced it."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        words = line.split()
        if len(words) >= 2 and words[0].decode("latin-1") in SLOW_ABOVE:
            limit = SLOW_ABOVE[words[0].decode("latin-1")]
            if _above(words[1].decode("latin-1"), limit):
                lines[i] = line.replace(words[1], str(limit).encode(), 1)
    return b"\n".join(lines)


FILES = {
    "graph": "examples/small/network/graph_autoencoder_v1_M3_S8_L2-I6.dat",
    "logic": "examples/small/network/logic_autoencoder_v1_M3_S8_L2-I6.dat",
    "fixwb": "examples/small/network/fixwb_autoencoder_v1_M3_S8_L2-I6.dat",
    "shared_w": "examples/small/network/shared_w_autoencoder_v1_M3_S8_L2-I6.dat",
    "shared_b": "examples/small/network/shared_b_autoencoder_v1_M3_S8_L2-I6.dat",
    "train": "examples/small/data/train.dat",
    "valid": "examples/small/data/valid.dat",
    "test": "examples/small/data/test.dat",
    "backup": BACKUP,
}
SHARED_CONTENT = [b"2 ### 1 7 1; 2 7 1;\n", b"1 ### 1 7 1;\n2 ### 15 17 1; 16 17 1;\n",
                  b"3 ### 1 1; 2 1; 3 1;\n", b"1 ### 99 1;\n", b"0 ###\n"]


def make_case(folder, seed, k):
    """Apply case k's mutation to the tree at `folder`; returns (argv, description)."""
    rng = random.Random(f"{seed}:{k}")
    command = rng.choice(["train"] * 12 + ["predict"] * 4 + ["check"] * 3)
    target = rng.choice(["params"] * 8 + ["graph", "logic", "fixwb", "train", "valid", "test",
                                          "shared", "backup"] * 2)
    params = folder / PARAMS
    variant = rng.choice([{}] * 6 + VARIANTS)
    if variant:
        params.write_text(_set_entries(params.read_text(), variant))
    if target == "params":
        text, change = mutate_params(rng, params.read_text(encoding="latin-1"))
        params.write_bytes(tame(text.encode("latin-1", "replace") if change is None
                                else text.encode("utf-8")))
        what = f"params {_short(change)}" if change else "params (bytes)"
    elif target == "shared":
        kind = rng.choice(["shared_w", "shared_b"])
        entry = "shared_weights_num" if kind == "shared_w" else "shared_biases_num"
        count = rng.choice(["1", "2", "3", "100000", "18446744073709551615"])
        text = params.read_text().replace(f"{entry:<27}0", f"{entry:<27}{count}")
        params.write_text(text)
        content = rng.choice(SHARED_CONTENT + [b""])
        if rng.random() < 0.5:
            content = mutate_bytes(rng, content)
        (folder / FILES[kind]).write_bytes(content)
        what = f"{kind} count {count} content {_short(content)}"
    else:
        path = folder / FILES[target]
        path.write_bytes(mutate_bytes(rng, path.read_bytes()))
        what = f"{target} file"
        if target == "backup":
            command = "predict"
    argv = {"train": ["train", "--quiet", "--backend", "cpu", PARAMS],
            "predict": ["predict", "--load", BACKUP, "--quiet", "--backend", "cpu", PARAMS],
            "check": ["check", PARAMS]}[command]
    return argv, f"case {k}: {command}, {_short(variant) + ', ' if variant else ''}{what}"


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


# ---- running and judging ------------------------------------------------------------------------
class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def run_in(folder, argv, limit=60):
    """cli.main(argv) in `folder`: (exit status, stderr text, warnings raised)."""
    err, out = io.StringIO(), io.StringIO()
    here = os.getcwd()
    old = signal.signal(signal.SIGALRM, _alarm)
    os.chdir(folder)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err), \
                contextlib.redirect_stdout(out):
            warnings.simplefilter("always")
            signal.alarm(limit)
            try:
                rc = main(argv)
            except Hang:
                rc = "hang"
            except BaseException:                 # what a user would see as a traceback
                err.write(traceback.format_exc())
                rc = "traceback"
            finally:
                signal.alarm(0)
    finally:
        os.chdir(here)
        signal.signal(signal.SIGALRM, old)
    return rc, err.getvalue(), out.getvalue(), [f"{Path(w.filename).name}:{w.lineno}: {w.message}"
                                                for w in caught]


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


LEFTOVER = re.compile(r"\.tmp[0-9]+$|\.lock$")


def judge(rc, err, caught, before, after):
    """The list of broken rules (empty when the case is fine). Exit 3 (training never had a
    finite model) may only have appended to existing files (the logs) and added new ones."""
    broken = []
    if rc not in (0, 1, 3):
        broken.append(f"exit status {rc}")
    if "Traceback" in err:
        broken.append("traceback")
    if caught:
        broken.append(f"warnings {caught[:3]}")
    lines = err.splitlines()
    if rc in (1, 3) and not (len(lines) == 1 and lines[0].startswith("implicit-nn: error: ")
                             and err.endswith("\n")):
        broken.append("not exactly one 'implicit-nn: error:' line")
    if rc == 3:             # training without any finite model: only the logs grew
        rewritten = [n for n in before if not after.get(n, b"").startswith(before[n])]
        if rewritten:
            broken.append(f"files replaced or removed by a run without a finite model: "
                          f"{rewritten}")
    if rc == 0 and err:
        broken.append("stderr output on success")
    left = [name for name in after if LEFTOVER.search(name)]
    if left:
        broken.append(f"leftover files {left}")
    if rc == 1 and before != after:
        changed = sorted(set(before) ^ set(after)
                         | {n for n in set(before) & set(after) if before[n] != after[n]})
        broken.append(f"outputs touched on error: {changed}")
    return broken


def run_case(base, work, seed, k):
    """Copy `base` to `work`, mutate, run; (description, rc, first stderr line, broken rules)."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    argv, what = make_case(work, seed, k)
    before = snapshot(work)
    rc, err, _, caught = run_in(work, argv)
    broken = judge(rc, err, caught, before, snapshot(work))
    return what, rc, (err.splitlines() or [""])[0][:200], broken
