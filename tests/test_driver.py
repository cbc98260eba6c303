"""The driver on a tiny self-made setup: log structure, stopping rules, start-up errors (driver.md).

A (3;8;4) autoencoder on synthetic data (normal rows ~ N(0,1), anomalies shifted) keeps every run
to a second or two, so each behaviour of §1.4 and §4-§6 is checked on real runs of the trainer.
"""

import os

import numpy as np
import pytest

from implicit_nn.cli import main
from implicit_nn.engine import resolve_backend
from implicit_nn.tools.make_config import make_autoencoder

from conftest import log_rows


def write_data(path, rows, labels=None, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4)).astype(np.float32)
    lines = []
    for i, row in enumerate(x):
        label = None if labels is None else labels[i]
        values = row + (shift if label == 1 else 0.0)
        text = " ".join(f"{v:.6f}" for v in values)
        lines.append(text if label is None else f"{text} {label}")
    path.write_text("\n".join(lines) + "\n")


PARAMS = dict(
    seed=2025, shuffle_num=50, thread_num=1, tol_fixit="1.0e-5", maxiter_grad=2, maxiter_fix=50,
    initdx="1.0", sfreq=3, input_name="data/train.csv", input_name_valid="data/valid.csv",
    input_name_test="data/test.csv", output_name="out/results.dat",
    predict_name_valid="out/predict_valid.dat", predict_name_test="out/predict_test.dat",
    test_log="out/test_metrics.dat", test_log_final="out/test_metrics_final.dat", learn_num=100,
    valid_num=60, test_num=40, mini_batch_size=16, neuron_num=None, input_num=4, output_num=4,
    shared_weights_num=0, shared_biases_num=0, graph_datas=None, logic_datas=None,
    fixwb_datas=None, shared_w_datas=None, shared_b_datas=None, alpha="0.0001",
    train_lossfunction_type="MSE", valid_metric_type="F1", valid_metric_type_2="F1",
    range_div=800, optimizer=1, nesterov=1, grad_alpha="0.01", adam_alpha="1.0e-3",
    adam_beta1="0.9", adam_beta2="0.999", adam_eps="1.0e-8", lr_scheduler=2, cyclic_momentum=0,
    pcr="1.0", base_momentum="0.85", max_momentum="0.95", div_factor="10.0",
    final_div_factor="10.0", step_size=1, lr_gamma="0.5", early_stopping=0, ff_optimization=1,
    clipping=0, clipping_threshold="1.0", loaddatas=0, load_backup="none",
    save_best_model="out/backup.dat")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A working folder with network, data and a writer for inputs/simulparams.dat."""
    tag, _, neurons, _ = make_autoencoder(tmp_path / "cfg", "v0", 3, 8, 4, 4, 9)
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "inputs").mkdir()
    write_data(tmp_path / "data/train.csv", 100, seed=1)
    labels_v = [1 if i % 5 == 0 else 0 for i in range(60)]
    labels_t = [1 if i % 4 == 0 else 0 for i in range(40)]
    write_data(tmp_path / "data/valid.csv", 60, labels_v, shift=3.0, seed=2)
    write_data(tmp_path / "data/test.csv", 40, labels_t, shift=3.0, seed=3)
    base = dict(PARAMS, neuron_num=neurons)
    for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b"):
        base[f"{kind}_datas"] = f"cfg/{kind}_autoencoder_{tag}.dat"
    monkeypatch.chdir(tmp_path)

    def write(**changes):
        values = dict(base, **changes)
        text = "".join(f"{name:<27}{value}\n" for name, value in values.items())
        (tmp_path / "inputs/simulparams.dat").write_text(text)
        return tmp_path
    return write


def final(path):
    lines = path.read_text().splitlines()
    return [c.strip() for c in lines[3].split("|")[1:-1]]


def train(*extra):
    return main(["train", "--quiet", "--backend", "cpu", *extra])


def test_two_epochs_structure_and_consistency(setup):
    root = setup()
    assert train() == 0
    res = (root / "out/results.dat").read_text().splitlines()
    assert res[0] == "*" * 133 and res[2] == "-" * 133 and res[-1] == "-" * 133
    # M = ceil(100/16) = 7, interval 7 div 3 = 2: validations after MB 2, 4, 6, 7
    got = log_rows(root / "out/results.dat")
    assert [r[:2] for r in got] == [[str(e), str(m)] for e in (1, 2) for m in (2, 4, 6, 7)]
    assert all(r[5:7] == ["4.00", "3.00"] for r in got)          # ff mode: IF = dist_max
    tst = (root / "out/test_metrics.dat").read_text().splitlines()
    assert tst[0] == "*" * 157 and tst[-1] == "-" * 156
    trows = log_rows(root / "out/test_metrics.dat")
    assert [r[:2] for r in trows] == [r[:2] for r in got]
    fin = final(root / "out/test_metrics_final.dat")
    assert fin[0] == "2"
    assert float(fin[3]) == pytest.approx(float(got[-1][4]), abs=1e-6)       # VF1 = last BVM
    assert fin[4:9] == trows[-1][7:12]                                        # CT* as logged
    pv = (root / "out/predict_valid.dat").read_text().splitlines()
    assert len(pv) == 60 and all(len(l.split()) == 4 and l.endswith(" ") for l in pv)
    assert len((root / "out/predict_test.dat").read_text().splitlines()) == 40
    last = (root / "out/backup.dat").read_text().splitlines()[-1]
    assert len(last.split()) == 3 and last.endswith(" ")


def test_same_seed_same_logs(setup):
    root = setup()
    assert train() == 0
    first = [r[:10] for r in log_rows(root / "out/results.dat")]
    for name in ("results.dat", "test_metrics.dat", "test_metrics_final.dat"):
        (root / "out" / name).unlink()
    assert train() == 0
    assert [r[:10] for r in log_rows(root / "out/results.dat")] == first


def test_rerun_appends_blocks(setup):
    root = setup(maxiter_grad=1)
    assert train() == 0 and train() == 0
    assert (root / "out/test_metrics_final.dat").read_text().count("*" * 121) == 2


def test_explosion_after_a_finite_model_is_a_normal_end(setup):
    """Step decay by 10^6 per epoch: epoch 1 trains, epoch 2 explodes; the best model of epoch 1
    is evaluated and kept, exit 0 (the original's end of an exploding run)."""
    root = setup(lr_scheduler=3, lr_gamma="1.0e6", maxiter_grad=3)
    assert train() == 0
    got = log_rows(root / "out/results.dat")
    assert [r[:2] for r in got[:4]] == [["1", "2"], ["1", "4"], ["1", "6"], ["1", "7"]]
    assert got[-1][0] == "2" and not abs(float(got[-1][2])) <= 5e19       # exploded (driver Q6)
    assert all(abs(float(r[2])) <= 5e19 for r in got[:-1])
    trows = log_rows(root / "out/test_metrics.dat")
    assert len(trows) == len(got) - 1                  # driver Q17: explosion row in results log only
    assert final(root / "out/test_metrics_final.dat")[0] == "2"
    assert (root / "out/results.dat").read_text().splitlines()[-1] == "-" * 133
    best = (root / "out/backup.dat").read_text().split()
    assert all(np.isfinite(np.float32(v)) for v in best)


def test_explosion_before_any_finite_model_fails_and_keeps_the_old_backup(setup, capsys):
    """The first validation already exploded: nothing is 'best' (the original saved a backup of
    NaNs and final metrics of it); the run says so, exit 3, the earlier backup is untouched and
    no predictions or final metrics are written; the logs hold the rows and their closing rules."""
    root = setup(grad_alpha="1.0e30", lr_scheduler=0, maxiter_grad=3)
    (root / "out/backup.dat").write_text("an earlier run's backup\n")
    assert train() == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "implicit-nn: error: out/results.dat: training never had a finite model: the ")
    assert "at its first validation (epoch 1, minibatch 2); no backup, predictions or final " \
           "metrics were written" in err
    got = log_rows(root / "out/results.dat")
    assert len(got) == 1 and got[0][2] in ("INF", "NAN", "-NAN")
    assert (root / "out/results.dat").read_text().splitlines()[-1] == "-" * 133
    assert (root / "out/test_metrics.dat").read_text().splitlines()[-1] == "-" * 156
    assert (root / "out/backup.dat").read_text() == "an earlier run's backup\n"
    assert sorted(p.name for p in (root / "out").iterdir()) == [
        "backup.dat", "results.dat", "test_metrics.dat"]


def test_early_stopping_row_not_logged(setup):
    root = setup(early_stopping=1, maxiter_grad=5, valid_metric_type="TPR")
    # the best TPR of a sweep that starts at th = -4 is 1 at once: the second validation
    # cannot improve on the first, and its early-stopping row is not logged (driver Q17)
    assert train() == 0
    got = log_rows(root / "out/results.dat")
    assert [r[:2] for r in got] == [["1", "2"]]
    assert got[0][3] == "1.000000"
    assert final(root / "out/test_metrics_final.dat")[0] == "1"


def test_load_and_predict(setup):
    root = setup(maxiter_grad=1)
    assert train() == 0
    saved = (root / "out/backup.dat").read_text()
    (root / "out/loaded.dat").write_text(saved)
    expected = final(root / "out/test_metrics_final.dat")
    setup(maxiter_grad=1, output_name="out/r2.dat", test_log="out/t2.dat",
          test_log_final="out/f2.dat", save_best_model="out/b2.dat")
    assert main(["predict", "--load", "out/loaded.dat", "--quiet", "--backend", "cpu"]) == 0
    assert len((root / "out/r2.dat").read_text().splitlines()) == 4        # no training
    got = final(root / "out/f2.dat")
    assert got[0] == "0"
    assert all(abs(float(a) - float(b)) <= 1e-5 for a, b in zip(got[1:9], expected[1:9]))
    assert (root / "out/b2.dat").read_text() == saved                     # re-saved identically


def test_load_then_train_uses_loaded_weights_at_the_end(setup):
    """driver Q14: training runs, but the final evaluation and backup use the loaded weights."""
    root = setup(maxiter_grad=1)
    assert train() == 0
    (root / "out/loaded.dat").write_text((root / "out/backup.dat").read_text())
    loaded_weights = (root / "out/loaded.dat").read_text().splitlines()[:-1]
    setup(maxiter_grad=1, loaddatas=1, load_backup="out/loaded.dat", seed=7,
          save_best_model="out/b3.dat", output_name="out/r3.dat")
    assert train() == 0
    assert len(log_rows(root / "out/r3.dat")) == 4
    assert (root / "out/b3.dat").read_text().splitlines()[:-1] == loaded_weights


@pytest.mark.parametrize("change, words", [
    (dict(input_name="data/missing.csv"), "missing.csv"),
    (dict(train_lossfunction_type="Huber"), "Wrong loss function"),
    (dict(sfreq=0), "sfreq"),
    (dict(graph_datas="cfg/none.dat"), "none.dat"),
])
def test_startup_errors_are_one_line(setup, capsys, change, words):
    root = setup(**change)
    assert train() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and err[0].startswith("implicit-nn: error:")
    assert not (root / "out/test_metrics_final.dat").exists()


@pytest.mark.parametrize("change", [dict(input_name_test="data/missing.csv"),
                                    dict(learn_num=2**64 - 1), dict(valid_num=10**12)])
def test_bad_data_writes_nothing(setup, capsys, change):
    """Every input is read before the first log header (the original writes the headers first).
    A row count far beyond the file is the file's error, not an allocation failure."""
    root = setup(**change)
    assert train() == 1
    assert sorted(p.name for p in (root / "out").iterdir()) == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_names_engine_and_reports_validations(setup, capsys):
    setup(maxiter_grad=1)
    assert main(["train", "--backend", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Engine: cpu (numba); requested with --backend cpu\n" in out
    assert "Loading the test data" in out
    assert len([line for line in out.splitlines() if "VM" in line]) == 4     # not a tty


def test_unavailable_gpu_backend_fails_before_writing_anything(setup, capsys, monkeypatch):
    import implicit_nn.engine.gpu as gpu
    monkeypatch.setattr(gpu, "gpu_available", lambda: (False, "no CUDA device here"))
    root = setup()
    assert main(["train", "--quiet", "--backend", "gpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA device here" in err[0]
    assert sorted(p.name for p in (root / "out").iterdir()) == []


def test_auto_backend_falls_back_to_cpu(setup, capsys, monkeypatch):
    import implicit_nn.engine.gpu as gpu
    monkeypatch.setattr(gpu, "gpu_available", lambda: (False, "no CUDA device here"))
    setup(maxiter_grad=1)
    assert main(["train", "--backend", "auto"]) == 0
    assert "Engine: cpu (numba); --backend auto: no usable GPU (no CUDA device here)\n" in capsys.readouterr().out


def test_auto_backend_takes_a_usable_gpu_and_says_why(monkeypatch):
    import implicit_nn.engine.gpu as gpu
    monkeypatch.setattr(gpu, "gpu_available", lambda: (True, "Some GPU"))
    assert resolve_backend("auto") == ("gpu", "--backend auto: CuPy sees a CUDA device")
    assert resolve_backend("gpu") == ("gpu", "requested with --backend gpu")


def test_reference_backend_gives_the_cpu_numbers(setup):
    """The plain NumPy oracle and the numba engine run the same job to the same logs."""
    root = setup(maxiter_grad=1)
    assert main(["train", "--quiet", "--backend", "reference"]) == 0
    ref = final(root / "out/test_metrics_final.dat")
    (root / "out/test_metrics_final.dat").unlink()
    assert train() == 0
    cpu = final(root / "out/test_metrics_final.dat")
    assert ref[:-1] == cpu[:-1]          # every metric; ET is wall-clock


@pytest.mark.parametrize("entry", ["save_best_model", "predict_name_test", "test_log_final"])
def test_missing_output_folder_refused_before_training(setup, capsys, entry):
    root = setup(**{entry: "nowhere/file.dat"})
    assert train() == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{entry}: folder 'nowhere' does not exist" in err[0]
    assert sorted(p.name for p in (root / "out").iterdir()) == []


def test_utf8_file_names_train_and_check(setup, capsys):
    """File names are the parameter file's bytes: a UTF-8 folder name works (it was read as
    latin-1 and became 'donnÃ©es'); `check` prints such names, and escapes undecodable bytes."""
    root = setup(maxiter_grad=1)
    (root / "data").rename(root / "donn\u00e9es")
    params = root / "inputs/simulparams.dat"
    params.write_bytes(params.read_bytes().replace(b"data/", "donn\u00e9es/".encode()))
    assert train() == 0
    assert len(log_rows(root / "out/results.dat")) == 4
    assert main(["check"]) == 0
    assert "(donn\u00e9es/valid.csv)" in capsys.readouterr().out
    os.rename(root / "donn\u00e9es", os.fsencode(root) + b"/donn\xe9es")     # a latin-1 name
    params.write_bytes(params.read_bytes().replace("donn\u00e9es/".encode(), b"donn\xe9es/"))
    assert main(["check"]) == 0
    assert "(donn\\xe9es/valid.csv)" in capsys.readouterr().out
    os.remove(os.fsencode(root) + b"/donn\xe9es/test.csv")
    assert train() == 1
    assert capsys.readouterr().err == ("implicit-nn: error: donn\\xe9es/test.csv: cannot read "
                                       "file: No such file or directory\n")
