"""Fill the generated parts of the manuals in docs/ from the code, so that they cannot drift:

    python docs/make_manuals.py            # rewrite the generated blocks
    python docs/make_manuals.py --check    # exit 1 (naming the file) if one is out of date

A generated block sits between `<!-- generated: NAME -->` and `<!-- end generated -->`; the rest of
each manual is written by hand. What the code knows (the parameter schema and its accepted
values, the values of the bundled example and of the paper's runs, activation values, log columns,
a generated network) is read from it; the words about each item are the tables below, and
tests/test_manuals.py checks that every item of the code has them.
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from implicit_nn.engine.activations import act_derivative, act_value   # noqa: E402
from implicit_nn.outputs import FINAL_COLUMNS, RESULTS_COLUMNS, TEST_COLUMNS   # noqa: E402
from implicit_nn.params import (ALIASES, CHOICES, MAX_STRING, RANGE_DIV_MAX, SCHEMA,  # noqa: E402
                                format_value, read_params)
from implicit_nn.tools.make_config import autoencoder_files                   # noqa: E402

DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)",
                   re.S)

# -- parameters: meaning, and what the original does with odd values (where it matters) ---------
TYPES = {"u64": "integer ≥ 0", "f32": "number (float32)",
         "str": f"file name (no spaces, ≤ {MAX_STRING} bytes)"}
ACCEPTED = {   # constraints checked at start-up other than the choice lists (params.validate)
    "sfreq": "1 … number of minibatches (when training)",
    "learn_num": "≥ 1, ≤ rows of the training file",
    "valid_num": "≤ rows of the validation file", "test_num": "≤ rows of the test file",
    "mini_batch_size": "≥ 1", "neuron_num": "≥ input_num; = neurons in the graph file",
    "input_num": "≥ 1", "output_num": "= input_num", "initdx": "finite",
    "range_div": f"≤ 2^{RANGE_DIV_MAX.bit_length() - 1}", "step_size": "≥ 1 with lr_scheduler 3",
    "pcr": "see lr_scheduler", "input_name": "an existing file",
    "input_name_valid": "an existing file", "input_name_test": "an existing file",
    "graph_datas": "an existing file", "logic_datas": "an existing file",
    "fixwb_datas": "an existing file",
}
MEANING = {
    "seed": "seed of the C library's random generator (initial weights, shuffles)",
    "shuffle_num": "random row swaps of the training set at the start of every epoch",
    "thread_num": "threads of the CPU engine (numba); 0 = numba's default",
    "tol_fixit": "a fixed-point solve (cyclic networks) stops when the largest change of a "
                 "minibatch is below it",
    "maxiter_grad": "epochs; 0 = no training (with loaddatas 1: predictions of a backup)",
    "maxiter_fix": "most iterations of one fixed-point solve (forward or adjoint)",
    "initdx": "initial weights and biases are drawn from [−initdx, initdx]",
    "sfreq": "about how many validations per epoch: every ⌊minibatches / sfreq⌋-th minibatch "
             "and the last one of each epoch",
    "input_name": "training data: input_num numbers per line",
    "input_name_valid": "validation data: input_num numbers and a 0/1 label per line",
    "input_name_test": "test data: as the validation data",
    "output_name": "results log, one row per validation (appended to)",
    "predict_name_valid": "the best model's outputs for the validation set (written at the end)",
    "predict_name_test": "the best model's outputs for the test set",
    "test_log": "test-metrics log, one row per validation (appended to)",
    "test_log_final": "final metrics of the best model (appended to; summarize and eval.py read "
                      "its first block)",
    "learn_num": "training samples used (the first learn_num lines)",
    "valid_num": "validation samples used", "test_num": "test samples used",
    "mini_batch_size": "samples per minibatch (the last one of an epoch may be shorter)",
    "neuron_num": "neurons of the network (lines of the graph file)",
    "input_num": "input neurons = features: the first input_num neurons",
    "output_num": "output neurons: the last output_num neurons, compared with the inputs",
    "shared_weights_num": "groups of weights that share one value (0: shared_w_datas unread)",
    "shared_biases_num": "groups of biases that share one value (0: shared_b_datas unread)",
    "graph_datas": "graph file: edges and activations per neuron (file-formats.md)",
    "logic_datas": "logic file: which weights and biases are trained (1) or fixed (0)",
    "fixwb_datas": "fixwb file: the values of the fixed weights and biases",
    "shared_w_datas": "shared-weight groups",
    "shared_b_datas": "shared-bias groups",
    "alpha": "L2 regularisation: every weight's gradient gets 2·alpha·w (biases: none)",
    "train_lossfunction_type": "training loss; the validation error is an RMSE (MSE) or mean "
                               "absolute error (MAE), 0 for the other losses",
    "valid_metric_type": "validation metric VM that picks the best model",
    "valid_metric_type_2": "metric whose maximum over the threshold grid sets the threshold",
    "range_div": "the threshold grid: range_div + 1 z-score thresholds evenly on [−4, 4]",
    "optimizer": "optimiser", "nesterov": "Nesterov momentum (optimizer 1 only)",
    "grad_alpha": "learning rate of momentum SGD (the schedulers' base rate)",
    "adam_alpha": "learning rate of Adam and Adamax",
    "adam_beta1": "momentum of SGD and β1 of Adam/Adamax",
    "adam_beta2": "β2 of Adam/Adamax", "adam_eps": "ε of Adam/Adamax",
    "lr_scheduler": "learning-rate schedule over all minibatch steps",
    "cyclic_momentum": "schedulers 1 and 2 also cycle the momentum between base_momentum and "
                       "max_momentum",
    "pcr": "scheduler 1: fraction of the steps spent warming up; scheduler 2: cycle length as a "
           "fraction of the steps (1 = one cosine, no restart)",
    "base_momentum": "low end of the cycled momentum", "max_momentum": "high end of it",
    "div_factor": "scheduler 1 starts at rate / div_factor",
    "final_div_factor": "scheduler 1 ends at rate / (div_factor · final_div_factor); "
                        "scheduler 2 anneals to rate / final_div_factor",
    "step_size": "scheduler 3: epochs per decay step",
    "lr_gamma": "scheduler 3: factor per step, rate · lr_gamma^⌊(epoch − 1) / step_size⌋",
    "early_stopping": "stop after this many validations in a row without a better VM; 0 = off",
    "ff_optimization": "how the network is evaluated; 1 needs an acyclic graph",
    "clipping": "gradient clipping", "clipping_threshold": "θ of the clipping",
    "loaddatas": "start from a backup instead of random weights",
    "load_backup": "backup file read when loaddatas is 1",
    "save_best_model": "backup of the best model (after each epoch and at the end)",
}
ODD = {
    "seed": "0 seeds from the clock (a different run each time); values are reduced mod 2^32, "
            "and the C library treats 0 as 1, so 2^32 behaves like 1. Kept as is.",
    "shuffle_num": "Swaps draw `rand() % learn_num` (slightly biased, a row may swap with itself) "
                   "and the order carries over from epoch to epoch. Kept as is: results depend "
                   "on it.",
    "sfreq": "0 or more than the number of minibatches divides by zero in the original; "
             "refused at start-up.",
    "learn_num": "0 divides by zero in the shuffle; more than the file holds reads undefined "
                 "memory. Both refused (the second naming the file's real row count).",
    "valid_num": "More than the file holds reads undefined memory; refused.",
    "test_num": "More than the file holds reads undefined memory; refused.",
    "mini_batch_size": "0 divides by zero; refused.",
    "output_num": "Another value than input_num overwrites the next sample (smaller) or leaves "
                  "targets unset (larger); refused.",
    "shared_weights_num": "A count larger than the file's groups gives empty groups, which do "
                          "nothing: accepted, as the original.",
    "train_lossfunction_type": "An unknown name makes the original print the list of losses and "
                               "stop; so does this port (one error line).",
    "valid_metric_type": "Any other word keeps VM at 0 for the whole run (the first validation "
                         "stays 'best'); refused.",
    "valid_metric_type_2": "Any other word keeps the threshold at 0; refused.",
    "optimizer": "Other values update nothing and log an undefined rate; refused.",
    "nesterov": "Values above 1 mix the plain and the Nesterov update; refused.",
    "lr_scheduler": "Values above 3 run as 0 in the original; refused.",
    "pcr": "A value that makes scheduler 2's cycle 0 steps divides by zero; NaN, infinite or "
           "too large values give an undefined step count: refused. Negative with scheduler 1 "
           "counts as 0.",
    "step_size": "0 with lr_scheduler 3 divides by zero; refused.",
    "early_stopping": "Counts validations, not epochs, and is not reset at an epoch's start.",
    "ff_optimization": "On a graph with a cycle the original's check can miss it and run "
                       "unconverged levels; refused whenever the graph has a cycle.",
    "clipping": "Values above 1 act as 0 (no clipping); refused.",
    "cyclic_momentum": "Values above 1 act as 1; refused.",
    "loaddatas": "With maxiter_grad > 0 the original trains, but predicts and saves with the "
                 "loaded weights at the end; kept, as the original does it.",
    "initdx": "NaN or infinite gives NaN weights; refused.",
    "range_div": "Above 2^24 float32 cannot make the thresholds finer; refused.",
    "neuron_num": "The original reads that many neurons whatever the file holds; a file with "
                  "another number of neurons is refused.",
}
# the paper's value where it is not one value of examples/htru2_base.dat
PAPER = {"seed": "run + 2024", "neuron_num": "120 … 256 (network)",
         "ff_optimization": "1 (v0), 0 (v1, v2)", "thread_num": "—",
         "loaddatas": "0 (1 for the timing runs)"}
# entries the paper's runs set per run (output names, network files, the backup)
PER_RUN = ("output_name", "predict_name_valid", "predict_name_test", "test_log",
           "test_log_final", "graph_datas", "logic_datas", "fixwb_datas", "shared_w_datas",
           "shared_b_datas", "load_backup", "save_best_model")


def _cell(text):
    return str(text).replace("|", "\\|")


def parameter_table():
    example = read_params(ROOT / "inputs" / "simulparams.dat")
    paper = read_params(ROOT / "examples" / "htru2_base.dat")
    lines = ["| # | name | type | accepted | example | paper | meaning |",
             "|---|---|---|---|---|---|---|"]
    for number, (name, kind) in enumerate(SCHEMA, start=1):
        if name in CHOICES:
            accepted = ", ".join(f"`{v}` {what}".strip() for v, what in CHOICES[name].items())
        else:
            accepted = ACCEPTED.get(name, "")
        aliases = "".join(f" (also `{alias}`)" for alias in ALIASES.get(name, ()))
        if kind == "str":
            shown_example = Path(getattr(example, name)).name
        else:
            shown_example = format_value(getattr(example, name))
        shown_paper = PAPER.get(name) or ("per run" if name in PER_RUN
                                          else Path(format_value(getattr(paper, name))).name)
        kind_text = "word" if kind == "str" and name in CHOICES else TYPES[kind]
        lines.append(f"| {number} | `{name}`{aliases} | {kind_text} | {_cell(accepted)} | "
                     f"{_cell(shown_example)} | {_cell(shown_paper)} | {_cell(MEANING[name])} |")
    return "\n".join(lines) + "\n"


def odd_values():
    names = [name for name, _ in SCHEMA if name in ODD]
    return "".join(f"- **`{name}`**: {ODD[name]}\n" for name in names)


# -- activations: name, f and f' as text and as numpy expressions (checked against the code) ----
ACTIVATIONS = [
    (0, "identity", "a", "1", "a", "1 + 0 * a"),
    (1, "sigmoid σ", "1 / (1 + e^−a)", "σ(a) · (1 − σ(a))", "1 / (1 + np.exp(-a))",
     "np.exp(-a) / (1 + np.exp(-a)) ** 2"),
    (2, "tanh", "tanh a", "1 − tanh² a", "np.tanh(a)", "1 - np.tanh(a) ** 2"),
    (3, "ReLU", "max(a, 0)", "1 if a > 0, else 0", "np.maximum(a, 0)", "(a > 0) * 1.0"),
    (4, "SiLU", "a · σ(a)", "(1 + e^−a + a·e^−a) / (1 + e^−a)²", "a / (1 + np.exp(-a))",
     "(1 + np.exp(-a) + a * np.exp(-a)) / (1 + np.exp(-a)) ** 2"),
    (5, "zero", "0", "0", "0 * a", "0 * a"),
    (6, "1 − a", "1 − a", "−1", "1 - a", "-1 + 0 * a"),
    (7, "reciprocal", "1 / a", "−1 / a²", "1 / a", "-1 / a ** 2"),
    (8, "cosine", "cos a", "−sin a", "np.cos(a)", "-np.sin(a)"),
    (9, "arctan", "arctan a", "1 / (1 + a²)", "np.arctan(a)", "1 / (1 + a ** 2)"),
    (10, "ELU (0.1)", "a if a > 0, else 0.1 · (e^a − 1)", "1 if a > 0, else 0.1 · e^a",
     "np.where(a > 0, a, 0.1 * (np.exp(a) - 1))", "np.where(a > 0, 1.0, 0.1 * np.exp(a))"),
    (11, "asinh", "ln(√(a² + 1) + a)", "1 / √(a² + 1)", "np.log(np.sqrt(a * a + 1) + a)",
     "1 / np.sqrt(a * a + 1)"),
]
SAMPLE_POINTS = (-1.0, 0.5)


def activation_table():
    lines = ["| id | name | f(a) | f′(a) | f(−1) | f(0.5) | f′(−1) | f′(0.5) |",
             "|---|---|---|---|---|---|---|---|"]
    a = np.array(SAMPLE_POINTS, dtype=np.float32)
    for ident, name, f_text, d_text, _, _ in ACTIVATIONS:
        kinds = np.full(len(a), ident, dtype=np.int64)
        values = [f"{float(v):.7g}" for v in act_value(kinds, a)]
        slopes = [f"{float(v):.7g}" for v in act_derivative(kinds, a)]
        lines.append(f"| {ident} | {name} | {f_text} | {d_text} | " + " | ".join(values + slopes)
                     + " |")
    return "\n".join(lines) + "\n"


# -- output files: what each column of the three logs holds --------------------------------------
COLUMNS = {
    "ITER": "epoch (1-based); in the final block, the number of epochs run",
    "MB": "minibatch of the epoch after which this validation ran (1-based)",
    "LE": "training loss of the epoch so far, per sample and output",
    "VM": "validation metric (valid_metric_type) of this validation",
    "BVM": "best VM so far (the best model's)",
    "IF": "fixed-point iterations of the forward solves, mean per minibatch in this epoch "
          "(acyclic networks: the number of levels)",
    "IB": "the same for the adjoint (gradient) solves",
    "MAW": "largest absolute weight gradient of this minibatch",
    "MAB": "largest absolute bias gradient of this minibatch",
    "LR": "learning rate of this minibatch",
    "ET": "seconds of training so far (the final block: whole run)",
    "TF1": "test F1 at this validation's threshold, mean and standard deviation",
    "TMCC": "test MCC, likewise",
    "CTF1": "test F1 of the best model so far (as recorded when it was best)",
    "CTMCC": "test MCC of the best model", "CTACC": "test accuracy of the best model",
    "CTP": "test precision of the best model", "CTR": "test recall (TPR) of the best model",
    "VAUC": "validation AUC of the best model", "VMCC": "validation MCC of the best model",
    "VF1": "validation F1 of the best model",
}


def column_table(columns):
    lines = ["| column | holds |", "|---|---|"]
    lines += [f"| {name} | {COLUMNS[name]} |" for name in columns]
    return "\n".join(lines) + "\n"


EXAMPLE_NETWORK = ("v2", 1, 4, 2, 2, 9)     # [2, 2, 2]: lateral latent edges and sigmoid gates


def network_example():
    tag, layers, neurons, trainable, files = autoencoder_files(*EXAMPLE_NETWORK)
    text = [f"`implicit-nn make-config autoencoder --family v2 --hidden-layer-num 1 "
            f"--latent-num 2 --input-num 2`: layers {layers}, {neurons} neurons, {trainable} "
            "trainable values. Each line ends with a space.\n"]
    for name, body in files.items():
        shown = body if body else "(empty file)\n"
        text.append(f"\n`{name}`\n```\n{shown}```\n")
    return "".join(text)


BLOCKS = {
    "parameters.md": {"parameter-table": parameter_table, "odd-values": odd_values},
    "activations.md": {"activation-table": activation_table},
    "file-formats.md": {"network-example": network_example,
                        "results-columns": lambda: column_table(RESULTS_COLUMNS),
                        "test-columns": lambda: column_table(TEST_COLUMNS),
                        "final-columns": lambda: column_table(FINAL_COLUMNS)},
}


def filled(name, text):
    """The manual `name` with its generated blocks made from the code."""
    makers = BLOCKS[name]
    seen = []

    def fill(match):
        seen.append(match["name"])
        return match[1] + makers[match["name"]]() + match[4]

    result = BLOCK.sub(fill, text)
    missing = set(makers) - set(seen)
    if missing:
        raise SystemExit(f"docs/{name}: no block for {', '.join(sorted(missing))}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a manual is not what the code gives")
    args = parser.parse_args(argv)
    stale = []
    for name in BLOCKS:
        path = DOCS / name
        text = path.read_text()
        new = filled(name, text)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python docs/make_manuals.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
