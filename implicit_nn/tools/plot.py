"""`implicit-nn plot`: training curves from results logs, a ROC curve from a prediction file, or
the confusion matrix of a folder's best run.

Curves: LE (running training loss) and VM (validation metric) of every logged validation against
fractional epochs, (ITER - 1) + MB / M, where M is the largest MB of the log (the epoch's last
minibatch, always validated); several runs overlaid. ROC: the reconstruction RMSE of each
validation sample is its anomaly score. Confusion matrix: as eval.py --conf_matrix drew it, the
best run's test predictions scored by their RMSE, z-scored with the validation mean and standard
deviation kept in its backup and called anomalous above the backup's threshold; cells are
percentages of all test samples, predicted class in rows, actual class in columns. Unless -o says
otherwise, a picture is written beside what it was drawn from. matplotlib is an optional extra
and runs headless (Agg).
"""

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .summarize import summarize

MISSING_VALUE = -1e19   # the original logs -INF (-1e20) for "no metric yet"
CURVES_SIZE = (8.0, 6.0)
ROC_SIZE = (6.0, 6.0)
CONFUSION_SIZE = (6.0, 5.0)
CLASSES = ("normal", "anomaly")
DPI = 100


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("plot needs matplotlib: pip install implicit-nn[plot]") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def check_image_format(output):
    """Refuse an image suffix matplotlib cannot write, before any input is read (matplotlib
    would fail with a traceback after the work); no suffix writes PNG, as matplotlib does."""
    suffix = os.path.splitext(output)[1]
    if not suffix:
        return
    _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix[1:].lower() not in formats:
        raise InputError(f"unknown image format '{suffix[1:]}'; expected one of "
                         f"{', '.join(sorted(formats))}", output)


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


def rmse_and_labels(predict_path, data_path):
    """Per-sample reconstruction RMSE of a prediction file against a labelled data file, labels."""
    pred = read_predictions(predict_path)
    data = _read_table(data_path, pred.shape[1] + 1, "features then a 0/1 label")
    if len(data) != len(pred):
        raise InputError(f"expected {len(pred)} samples as in {predict_path}, got {len(data)}",
                         data_path)
    labels = data[:, -1]
    if not np.isin(labels, (0, 1)).all() or labels.min() == labels.max():
        raise InputError("expected labels 0 and 1, both present", data_path)
    return np.sqrt(np.mean((pred - data[:, :-1]) ** 2, axis=1)), labels


def roc_from_files(predict_path, data_path):
    """ROC of the reconstruction RMSE of the prediction file against the labelled data file."""
    return roc_curve(*rmse_and_labels(predict_path, data_path))


def best_run_confusion(folder, test_path, metric="VF1"):
    """(runset, [[TN, FN], [FP, TP]]) of the best run of the one configuration in folder."""
    runsets = summarize(folder, metric)
    if len(runsets) != 1:
        raise InputError(f"expected the runs of one configuration, found {len(runsets)}: "
                         f"{' '.join(rs.tag for rs in runsets)}", folder)
    (runset,) = runsets
    if runset.best is None:
        raise InputError(f"no best run: {runset.metric} is NaN in every run", folder)
    if runset.backup is None:
        raise InputError("expected valid_th valid_mean valid_std on its last line",
                         runset.run_file("backup_best_autoencoder", runset.best))
    rmse, labels = rmse_and_labels(runset.run_file("predict_test", runset.best), test_path)
    th, mean, std = runset.backup
    anomaly = (rmse - mean) / std > th
    actual = labels == 1
    counts = [[np.sum(~anomaly & ~actual), np.sum(~anomaly & actual)],
              [np.sum(anomaly & ~actual), np.sum(anomaly & actual)]]
    return runset, np.array(counts, dtype=int)


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


def plot_confusion(folder, test_path, output, metric="VF1"):
    runset, counts = best_run_confusion(folder, test_path, metric)
    percent = 100.0 * counts / counts.sum()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=CONFUSION_SIZE, dpi=DPI)
    image = ax.imshow(percent, cmap="Blues", vmin=0.0)
    for (row, col), value in np.ndenumerate(percent):
        ax.text(col, row, f"{value:.2f}%\n({counts[row, col]})", ha="center", va="center",
                color="white" if value > percent.max() / 2 else "black", fontsize=13)
    ax.set_xticks([0, 1], CLASSES)
    ax.set_yticks([0, 1], CLASSES)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title(f"{runset.tag}, run {runset.runs[runset.best]} (best {runset.metric})")
    fig.colorbar(image, ax=ax, label="% of test samples")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return runset, counts


def plot_stats(path, output):
    """Solver statistics of a --stats file against fractional epochs: iterations (mean and max)
    and relative residuals (mean and max, log scale) of the training forward, training adjoint
    and validation-time forward solves; maxiter_fix hits as markers."""
    from implicit_nn.solver_stats import GROUPS, read_stats

    rows = [r for r in read_stats(path) if r["kind"] == "validation"]
    if not rows:
        raise InputError("no validation rows: expected a --stats file of a training run", path)
    last = max(r["minibatch"] for r in rows)
    x = np.array([r["epoch"] - 1 + r["minibatch"] / last for r in rows])
    plt = _pyplot()
    fig, (ax_it, ax_res) = plt.subplots(2, 1, sharex=True, figsize=CURVES_SIZE, dpi=DPI)
    for group in GROUPS:
        it_mean, it_max, hit, rel_mean, rel_max = (
            np.array([r[f"{group}_{m}"] for r in rows], dtype=float)
            for m in ("iter_mean", "iter_max", "maxiter_frac", "relative_mean", "relative_max"))
        label = group.replace("_", " ")
        line, = ax_it.plot(x, it_mean, label=f"{label} (mean)")
        ax_it.plot(x, it_max, linestyle=":", color=line.get_color())
        ax_it.plot(x[hit > 0], it_max[hit > 0], "x", color=line.get_color())
        ax_res.plot(x, rel_mean, color=line.get_color(), label=label)
        ax_res.plot(x, rel_max, linestyle=":", color=line.get_color())
    ax_it.set_ylabel("iterations (max dotted, x: maxiter hit)")
    ax_res.set_yscale("log")
    ax_res.set_ylabel("relative residual (max dotted)")
    ax_res.set_xlabel("epoch")
    ax_it.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)


def run_plot(args):
    chosen = [name for name, given in (("--roc", args.roc), ("--confusion", args.confusion),
                                       ("--stats", args.stats)) if given]
    if len(chosen) > 1 or (chosen and args.files):
        raise InputError("give results logs, --roc, --confusion or --stats, one of them")
    if args.stats:
        output = args.output or str(Path(args.stats).with_name("solver_stats.png"))
        check_image_format(output)
        plot_stats(args.stats, output)
        print(f"wrote {output}")
    elif args.roc:
        output = args.output or str(Path(args.roc[0]).with_name("roc.png"))
        check_image_format(output)
        area = plot_roc(*args.roc, output)
        print(f"AUC {area:.6f}; wrote {output}")
    elif args.confusion:
        folder, test_path = args.confusion
        output = args.output or str(Path(folder) / "confusion_matrix.png")
        check_image_format(output)
        runset, ((tn, fn), (fp, tp)) = plot_confusion(folder, test_path, output, args.metric)
        print(f"{runset.tag} run {runset.runs[runset.best]} (best by {runset.metric}): "
              f"TN {tn} FP {fp} FN {fn} TP {tp}; wrote {output}")
    else:
        if not args.files:
            raise InputError("expected results log files (or --roc or --confusion)")
        output = args.output or str(Path(args.files[0]).with_name("training_curves.png"))
        check_image_format(output)
        plot_curves(args.files, output)
        print(f"wrote {output}")
    return 0
