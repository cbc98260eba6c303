"""`implicit-nn plot`: PNGs decoded with plain Python, ROC area against the Mann-Whitney statistic."""

import struct
import sys

import numpy as np
import pytest

from implicit_nn.cli import main
from implicit_nn.errors import InputError
from implicit_nn.tools import plot

TAG = "v0_M5_S32_L8-I8"


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", raw[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", raw[16:24])


def mann_whitney_auc(scores, labels):
    """P(anomaly score > normal score) + P(tie) / 2 by ranking with average ranks for ties."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (len(pos) * len(neg))


def test_results_log_rows(reference):
    log = reference / "training" / "v1_5_32_8" / f"results_{TAG.replace('v0', 'v1')}_2.dat"
    x, le, vm = plot.read_results_log(log)
    # 5 epochs of 12 validations, then 6 in epoch 6, the last one logged with LE = INF
    assert len(x) == 66
    assert x[0] == pytest.approx(74 / 823) and x[11] == 1.0 and x[-1] == pytest.approx(5 + 444 / 823)
    assert np.isinf(le[-1]) and np.isfinite(le[:-1]).all() and vm[-1] == pytest.approx(0.885106)


def test_curves_png(reference, tmp_path, capsys):
    logs = [str(reference / "training" / "v0_5_32_8" / f"results_{TAG}_{k}.dat") for k in (1, 2)]
    out = tmp_path / "curves.png"
    assert main(["plot", *logs, "-o", str(out)]) == 0
    assert png_size(out) == (800, 600)


def test_roc_png_and_area(reference, tmp_path, capsys):
    predict = reference / "inference" / "v0_5_32_8" / f"predict_valid_{TAG}_1.dat"
    valid = reference / "data" / "htru2smote_valid.csv"
    out = tmp_path / "roc.png"
    assert main(["plot", "--roc", str(predict), str(valid), "-o", str(out)]) == 0
    assert png_size(out) == (600, 600)
    printed = float(capsys.readouterr().out.split()[1].rstrip(";"))

    fpr, tpr, area = plot.roc_from_files(predict, valid)
    data = np.loadtxt(valid)
    pred = np.loadtxt(predict)
    rmse = np.sqrt(((pred - data[:, :-1]) ** 2).mean(axis=1))
    assert area == pytest.approx(mann_whitney_auc(rmse, data[:, -1]), abs=1e-12)
    assert printed == pytest.approx(area, abs=1e-6)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    # the original's VAUC sweeps z-scores in [-4, 4] only, so it is a little below the exact area
    vauc = 0.937335
    assert vauc - 1e-6 <= area < vauc + 0.01


def test_roc_curve_ties():
    fpr, tpr, area = plot.roc_curve(np.array([1.0, 1.0, 0.0, 2.0]), np.array([0, 1, 0, 1]))
    assert area == pytest.approx(mann_whitney_auc(np.array([1.0, 1.0, 0.0, 2.0]),
                                                   np.array([0, 1, 0, 1])))
    assert list(fpr) == [0.0, 0.0, 0.5, 1.0] and list(tpr) == [0.0, 0.5, 1.0, 1.0]


def test_bad_inputs(reference, tmp_path, capsys):
    predict = reference / "inference" / "v0_5_32_8" / f"predict_valid_{TAG}_1.dat"
    with pytest.raises(InputError, match="expected 2929 samples"):
        plot.roc_from_files(predict, reference / "data" / "htru2_test.csv")
    ragged = tmp_path / "p.dat"
    ragged.write_text("1 2 \n3 \n")
    with pytest.raises(InputError, match=r"p\.dat:2: expected 2 values"):
        plot.read_predictions(ragged)
    with pytest.raises(InputError, match="no validation rows"):
        plot.read_results_log(ragged)
    assert main(["plot"]) == 1
    assert "expected results log" in capsys.readouterr().err


def test_missing_matplotlib_is_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InputError, match=r"pip install implicit-nn\[plot\]"):
        plot._pyplot()


def _final_row(runset, index):
    return dict(zip(runset.columns, runset.values[index]))


@pytest.mark.parametrize("model", ["v0_5_32_8", "v0_7_64_16", "v1_5_32_8", "v1_5_64_8",
                                   "v2_5_32_8", "v2_7_64_8"])
def test_confusion_counts_reproduce_the_originals_test_metrics(reference, model):
    """eval.py's confusion matrix of the best run, recomputed from the printed predictions and
    the backup's threshold line, gives the original's own CTP, CTR and CTACC of that run."""
    runset, ((tn, fn), (fp, tp)) = plot.best_run_confusion(
        reference / "inference" / model, reference / "data" / "htru2_test.csv")
    assert tn + fn + fp + tp == 1790
    row = _final_row(runset, runset.best)
    assert tp / (tp + fp) == pytest.approx(row["CTP"], abs=6e-7)
    assert tp / (tp + fn) == pytest.approx(row["CTR"], abs=6e-7)
    assert (tp + tn) / 1790 == pytest.approx(row["CTACC"], abs=6e-7)


def test_confusion_png_in_the_folder_by_default(reference, tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    for k in (1, 2):
        for kind in ("test_metrics_final", "predict_test", "backup_best_autoencoder"):
            name = f"{kind}_{TAG}_{k}.dat"
            (folder / name).write_bytes((reference / "inference" / "v0_5_32_8" / name).read_bytes())
    test = str(reference / "data" / "htru2_test.csv")
    assert main(["plot", "--confusion", str(folder), test]) == 0
    assert png_size(folder / "confusion_matrix.png") == (600, 500)
    assert capsys.readouterr().out.startswith(f"{TAG} run 1 (best by VF1): TN 1602 FP 16 FN 29 "
                                              "TP 143; wrote ")
    assert main(["plot", "--confusion", str(folder), test, "--metric", "MCC",
                 "-o", str(tmp_path / "c.png")]) == 0
    assert png_size(tmp_path / "c.png") == (600, 500)


def test_confusion_needs_one_configuration(reference, capsys):
    test = str(reference / "data" / "htru2_test.csv")
    assert main(["plot", "--confusion", str(reference / "inference"), test]) == 1
    err = capsys.readouterr().err
    assert "expected the runs of one configuration, found 18" in err and err.count("\n") == 1


@pytest.mark.parametrize("output", ["curves.xyz", "curves."])
def test_unknown_image_format_is_refused_before_reading(tmp_path, capsys, output):
    """matplotlib raised a ValueError traceback after the work; now one line, nothing read."""
    out = tmp_path / output
    for argv in (["plot", str(tmp_path / "missing_log.dat")], ["plot", "--roc", "p", "d"],
                 ["plot", "--confusion", str(tmp_path), "t"]):
        assert main(argv + ["-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"implicit-nn: error: {out}: unknown image format "
                              f"'{out.suffix[1:]}'; expected one of ") and " png, " in err
    assert not out.exists()
