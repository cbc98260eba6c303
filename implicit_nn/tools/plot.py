"""`implicit-nn plot`: training curves from results logs, or a ROC curve from a prediction file.

Curves: LE (running training loss) and VM (validation metric) of every logged validation against
fractional epochs, (ITER - 1) + MB / M, where M is the largest MB of the log (the epoch's last
minibatch, always validated); several runs overlaid. ROC: the reconstruction RMSE of each
validation sample is its anomaly score. matplotlib is an optional extra and runs headless (Agg).
"""

from pathlib import Path

import numpy as np

from ..errors import InputError

MISSING_VALUE = -1e19   # the original logs -INF (-1e20) for "no metric yet"
CURVES_SIZE = (8.0, 6.0)
ROC_SIZE = (6.0, 6.0)
DPI = 100


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("plot needs matplotlib: pip install implicit-nn[plot]") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_results_log(path):
    """(fractional epoch, LE, VM) float arrays from the validation rows of a results log."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        pieces = [p.strip() for p in line.split("|")]
        if len(pieces) != 13 or not pieces[1].isdigit():
            continue   # rules and headers (the header's first piece is "ITER")
        try:
            rows.append([float(p) for p in pieces[1:5]])
        except ValueError:
            raise InputError("expected numbers in ITER, MB, LE, VM", path, number) from None
    if not rows:
        raise InputError("no validation rows: expected a results log (output_name)", path)
    epoch, mb, le, vm = np.array(rows).T
    vm[vm < MISSING_VALUE] = np.nan
    return epoch - 1 + mb / mb.max(), le, vm


def _read_table(path, columns, what):
    """Whitespace-separated numbers as rows of `columns` values (a token stream, as the original)."""
    try:
        values = np.array(Path(path).read_text().split(), dtype=float)
    except ValueError:
        raise InputError(f"expected only numbers ({what})", path) from None
    if values.size == 0 or values.size % columns:
        raise InputError(f"expected rows of {columns} numbers ({what}), got {values.size} "
                         "numbers in all", path)
    return values.reshape(-1, columns)


def read_predictions(path):
    """float[rows, O] from a prediction file (every line holds O values)."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines:
        raise InputError("expected prediction rows", path)
    width = len(lines[0])
    for number, tokens in enumerate(lines, start=1):
        if len(tokens) != width:
            raise InputError(f"expected {width} values like line 1, got {len(tokens)}",
                             path, number)
    return _read_table(path, width, "predictions")


def roc_curve(scores, labels):
    """(fpr, tpr, auc) over all score thresholds, high score = anomaly (label 1)."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    tpr = np.r_[0.0, tp / y.sum()]
    fpr = np.r_[0.0, fp / (len(y) - y.sum())]
    return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def roc_from_files(predict_path, data_path):
    """ROC of the reconstruction RMSE of the prediction file against the labelled data file."""
    pred = read_predictions(predict_path)
    data = _read_table(data_path, pred.shape[1] + 1, "features then a 0/1 label")
    if len(data) != len(pred):
        raise InputError(f"expected {len(pred)} samples as in {predict_path}, got {len(data)}",
                         data_path)
    labels = data[:, -1]
    if not np.isin(labels, (0, 1)).all() or labels.min() == labels.max():
        raise InputError("expected labels 0 and 1, both present", data_path)
    rmse = np.sqrt(np.mean((pred - data[:, :-1]) ** 2, axis=1))
    return roc_curve(rmse, labels)


def plot_curves(paths, output):
    curves = [(Path(p).name, *read_results_log(p)) for p in paths]
    plt = _pyplot()
    fig, (ax_le, ax_vm) = plt.subplots(2, 1, sharex=True, figsize=CURVES_SIZE, dpi=DPI)
    for name, x, le, vm in curves:
        ax_le.plot(x, le, label=name)
        ax_vm.plot(x, vm, label=name)
    ax_le.set_yscale("log")
    ax_le.set_ylabel("training loss (LE)")
    ax_vm.set_ylabel("validation metric (VM)")
    ax_vm.set_xlabel("epoch")
    ax_vm.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)


def plot_roc(predict_path, data_path, output):
    fpr, tpr, area = roc_from_files(predict_path, data_path)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=ROC_SIZE, dpi=DPI)
    ax.plot(fpr, tpr, label=f"RMSE score, AUC = {area:.4f}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(Path(predict_path).name)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return area


def run_plot(args):
    if args.roc:
        if args.files:
            raise InputError("--roc takes PREDICT_VALID VALID_DATA and no other files")
        output = args.output or "roc.png"
        area = plot_roc(*args.roc, output)
        print(f"AUC {area:.6f}; wrote {output}")
    else:
        if not args.files:
            raise InputError("expected results log files (or --roc PREDICT_VALID VALID_DATA)")
        output = args.output or "training_curves.png"
        plot_curves(args.files, output)
        print(f"wrote {output}")
    return 0
