"""Load mode end to end: `implicit-nn predict --load` reproduces the original's inference runs.

For every model of reference/inference (runs 1-2) the backup of that folder is loaded with the
historical parameters (driver.md §12-13, reference/README.md) and the final metrics and both
prediction files are compared with the original's (36 runs, about 15 s on the numba engine).
"""

import math
import re

import numpy as np
import pytest

from conftest import GOLDEN_BACKEND, REFERENCE, require_reference
from implicit_nn.cli import main

MODELS = [f"{fam}_{m}_{s}_{l}" for fam in ("v0", "v1", "v2")
          for (m, s, l) in ((5, 32, 8), (5, 32, 16), (5, 64, 8), (5, 64, 16), (7, 64, 8), (7, 64, 16))]


def tag(model):
    fam, m, s, l = model.split("_")
    return f"{fam}_M{m}_S{s}_L{l}-I8"


def historical_params(model, run, outdir, *, maxiter_grad=20, loaddatas=0, load_backup="none",
                      shuffle_num=100000, learn_num=13164, sfreq=11, early_stopping=0):
    """simulparams.dat text of the committed HTRU2 runs (simparam.py layout, historical data)."""
    ref = REFERENCE
    fam = model.split("_")[0]
    t = tag(model)
    cfg = ref / "configs" / fam
    graph = cfg / f"graph_autoencoder_{t}.dat"
    neurons = graph.read_text().count("\n")
    out = f"{outdir}/"
    values = [
        ("seed", run + 2024), ("shuffle_num", shuffle_num), ("thread_num", 2),
        ("tol_fixit", "1.0e-5"), ("maxiter_grad", maxiter_grad), ("maxiter_fix", 50),
        ("initdx", "1.0"), ("sfreq", sfreq),
        ("input_name", ref / "data/htru2smote_train.csv"),
        ("input_name_valid", ref / "data/htru2smote_valid.csv"),
        ("input_name_test", ref / "data/htru2_test.csv"),
        ("output_name", f"{out}results_{t}_{run}.dat"),
        ("predict_name_valid", f"{out}predict_valid_{t}_{run}.dat"),
        ("predict_name_test", f"{out}predict_test_{t}_{run}.dat"),
        ("test_log", f"{out}test_metrics_{t}_{run}.dat"),
        ("test_log_final", f"{out}test_metrics_final_{t}_{run}.dat"),
        ("learn_num", learn_num), ("valid_num", 2929), ("test_num", 1790), ("mini_batch_size", 16),
        ("neuron_num", neurons), ("input_num", 8), ("output_num", 8), ("shared_weights_num", 0),
        ("shared_biases_num", 0), ("graph_datas", graph),
        ("logic_datas", cfg / f"logic_autoencoder_{t}.dat"),
        ("fixwb_datas", cfg / f"fixwb_autoencoder_{t}.dat"),
        ("shared_w_datas", cfg / f"shared_w_autoencoder_{t}.dat"),
        ("shared_b_datas", cfg / f"shared_b_autoencoder_{t}.dat"),
        ("alpha", "0.0001"), ("train_lossfunction_type", "MSE"), ("valid_metric_type", "F1"),
        ("valid_metric_type_2", "F1"), ("range_div", 8000), ("optimizer", 1), ("nesterov", 1),
        ("grad_alpha", "0.01"), ("adam_alpha", "1.0e-3"), ("adam_beta1", "0.9"),
        ("adam_beta2", "0.999"), ("adam_eps", "1.0e-8"), ("lr_scheduler", 2),
        ("cyclic_momentum", 0), ("pcr", "1.0"), ("base_momentum", "0.85"),
        ("max_momentum", "0.95"), ("div_factor", "10.0"), ("final_div_factor", "10.0"),
        ("step_size", 1), ("lr_gamma", "0.5"), ("early_stopping", early_stopping),
        ("ff_optimization", 1 if fam == "v0" else 0), ("clipping", 0),
        ("clipping_treshold", "1.0"), ("loaddatas", loaddatas), ("load_backup", load_backup),
        ("save_best_model", f"{out}backup_best_autoencoder_{t}_{run}.dat"),
    ]
    assert len(values) == 58
    return "".join(f"{name:<27}{value}\n" for name, value in values)


def final_row(path):
    """eval.py's reading of a final-metrics file: header line 2, data row line 4 (§10)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    names = [c.strip() for c in lines[1].split("|")][1:-1]
    values = [float(c.strip()) for c in lines[3].split("|")[1:-1]]
    return dict(zip(names, values))


def compare_final(ours, ref):
    assert ours["ITER"] == ref["ITER"]
    for name, value in ref.items():
        if name in ("ITER", "ET"):
            continue
        if math.isnan(value):             # older build printed -nan for undefined MCC (§13)
            continue
        assert ours[name] == pytest.approx(value, abs=1e-3), name


def read_predictions(path):
    text = path.read_text()
    assert all(line.endswith(" ") for line in text.splitlines())
    return np.array([[float(v) for v in line.split()] for line in text.splitlines()])


def run_load(model, run, tmp_path, monkeypatch):
    ref = require_reference()
    folder = ref / "inference" / model
    backup = folder / f"backup_best_autoencoder_{tag(model)}_{run}.dat"
    (tmp_path / "inputs").mkdir()
    (tmp_path / "outputs").mkdir()
    params = tmp_path / "inputs" / "simulparams.dat"
    params.write_text(historical_params(model, run, "./outputs", maxiter_grad=0, loaddatas=1,
                                        load_backup="./outputs/ignored.dat"))
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--load", str(backup), "--quiet", "--backend", GOLDEN_BACKEND]) == 0
    return folder, tmp_path / "outputs"


def check_load(model, run, tmp_path, monkeypatch):
    folder, out = run_load(model, run, tmp_path, monkeypatch)
    t = tag(model)
    ours = final_row(out / f"test_metrics_final_{t}_{run}.dat")
    compare_final(ours, final_row(folder / f"test_metrics_final_{t}_{run}.dat"))
    for kind in ("valid", "test"):
        mine = read_predictions(out / f"predict_{kind}_{t}_{run}.dat")
        theirs = read_predictions(folder / f"predict_{kind}_{t}_{run}.dat")
        assert mine.shape == theirs.shape
        tol = 1.5e-6 if not model.startswith("v2") else 2e-5    # v0, v1: print precision
        assert np.max(np.abs(mine - theirs)) <= tol, kind
    # logs: header block + closing rule only; backup re-saved with the loaded th/mean/std (G5)
    results = (out / f"results_{t}_{run}.dat").read_text().splitlines()
    assert len(results) == 4 and results[3] == "-" * 133
    tests = (out / f"test_metrics_{t}_{run}.dat").read_text().splitlines()
    assert len(tests) == 4 and tests[3] == "-" * 156
    loaded = (folder / f"backup_best_autoencoder_{t}_{run}.dat").read_text().splitlines()[-1]
    saved = (out / f"backup_best_autoencoder_{t}_{run}.dat").read_text().splitlines()[-1]
    assert saved == loaded


@pytest.mark.parametrize("run", (1, 2))
@pytest.mark.parametrize("model", MODELS)
def test_load(model, run, tmp_path, monkeypatch):
    check_load(model, run, tmp_path, monkeypatch)


def test_v1_backup_resaved_byte_identical(tmp_path, monkeypatch):
    """G5: a v1 backup loaded and re-saved is byte-identical to the loaded file."""
    folder, out = run_load("v1_5_32_8", 1, tmp_path, monkeypatch)
    name = f"backup_best_autoencoder_{tag('v1_5_32_8')}_1.dat"
    assert (out / name).read_bytes() == (folder / name).read_bytes()


def test_missing_backup_is_one_line_error(tmp_path, monkeypatch, capsys):
    require_reference()
    (tmp_path / "inputs").mkdir()
    (tmp_path / "outputs").mkdir()
    (tmp_path / "inputs" / "simulparams.dat").write_text(
        historical_params("v0_5_32_8", 1, "./outputs", maxiter_grad=0, loaddatas=1))
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--load", "nowhere.dat", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere.dat" in err[0]
    assert not re.search("Traceback", err[0])
