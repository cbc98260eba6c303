"""A NaN / inf model is never the best one (issue 10): exploding runs on the bundled example, a
`nan` in a training row, parameters that go non-finite while the loss stays finite."""

import shutil

import numpy as np
import pytest

import netgen
from conftest import ROOT
from implicit_nn.cli import main
from test_driver import PARAMS, final, log_rows, write_data

BACKUP = "outputs/backup_best_autoencoder_small_1.dat"


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The bundled example (inputs/simulparams.dat and its files) in a fresh folder; returns a
    function that sets entries of its parameter file."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "inputs", tmp_path / "inputs")
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "inputs/simulparams.dat"
    text = params.read_text()

    def change(**entries):
        lines = [f"{line.split()[0]:<27}{entries[line.split()[0]]}"
                 if line.split() and line.split()[0] in entries else line
                 for line in text.splitlines()]
        params.write_text("\n".join(lines) + "\n")
        return tmp_path
    return change


def run(*argv):
    return main([*argv, "--quiet", "--backend", "cpu", "inputs/simulparams.dat"])


def assert_predict_reproduces_final_metrics(root):
    """`predict --load` of the best backup gives the training run's final metrics exactly."""
    trained = final(root / "outputs/test_metrics_final_small_1.dat")
    shutil.copy(root / BACKUP, root / "best.dat")
    assert run("predict", "--load", "best.dat") == 0
    lines = (root / "outputs/test_metrics_final_small_1.dat").read_text().splitlines()
    predicted = [c.strip() for c in lines[-2].split("|")[1:-1]]
    assert predicted[0] == "0" and predicted[1:-1] == trained[1:-1]      # not ITER, not ET


def test_grad_alpha_10_explodes_before_a_finite_model(example, capsys):
    """sfreq 4: the first validation (minibatch 16) has already exploded; no model was finite:
    exit 3, one error line, no backup / predictions / final metrics (the original saved a backup
    of NaNs and final metrics computed from it)."""
    root = example(grad_alpha=10)
    assert run("train") == 3
    err = capsys.readouterr().err
    assert err == ("implicit-nn: error: outputs/results_small_1.dat: training never had a finite "
                   "model: the training loss exploded (LE INF) at its first validation (epoch 1, "
                   "minibatch 16); no backup, predictions or final metrics were written\n")
    assert sorted(p.name for p in (root / "outputs").iterdir()) == [
        "results_small_1.dat", "test_metrics_small_1.dat"]
    rows = log_rows(root / "outputs/results_small_1.dat")
    assert [r[:3] for r in rows] == [["1", "16", "INF"]]
    assert rows[0][4] == "-100000002004087734272.000000"         # BVM: nothing became best


def test_grad_alpha_10_keeps_the_last_finite_best(example):
    """sfreq 64: minibatch 1 is validated before the loss blows up; it stays the best model,
    its backup is finite and predict --load of it reproduces the run's final metrics."""
    root = example(grad_alpha=10, sfreq=64)
    assert run("train") == 0
    rows = log_rows(root / "outputs/results_small_1.dat")
    assert not abs(float(rows[-1][2])) <= 5e19 and len(rows) > 2   # ends on an explosion
    assert all(r[4] == rows[0][3] for r in rows)                   # BVM: validation 1's VM
    values = np.array((root / BACKUP).read_text().split(), dtype=np.float32)
    assert np.isfinite(values).all()
    assert_predict_reproduces_final_metrics(root)


def test_nan_in_a_training_row(example):
    """One `nan` feature poisons its minibatch (loss NaN, weights NaN) late in epoch 1: the run
    stops there, the best model before it is kept and evaluated."""
    root = example()
    train = root / "examples/small/data/train.dat"
    lines = train.read_text().splitlines()
    lines[0] = "nan " + lines[0].split(" ", 1)[1]
    train.write_text("\n".join(lines) + "\n")
    assert run("train") == 0
    rows = log_rows(root / "outputs/results_small_1.dat")
    assert [r[:3] for r in rows][-1] == ["1", "64", "NAN"]
    assert all(r[2] != "NAN" for r in rows[:-1])
    values = np.array((root / BACKUP).read_text().split(), dtype=np.float32)
    assert np.isfinite(values).all()
    assert_predict_reproduces_final_metrics(root)


def test_parameters_non_finite_while_the_loss_is_finite(tmp_path, monkeypatch, capsys):
    """Adam with adam_eps 0 divides 0 by 0 where a gradient is exactly 0: the in-edges and bias
    of a neuron that feeds nothing become NaN, yet the outputs never see them, so the loss stays
    finite. The run ends there as an explosion does, saying which parameters went non-finite."""
    inputs, outputs = range(4), range(5, 9)
    spec = netgen.NetSpec(
        input_num=4, output_num=4,
        edges=[[(o, 0), (4, 0)] for o in outputs] + [[]] * 5,
        slots=[[0]] * 4 + [[9]] + [[0]] * 4,
        edge_logic=[[1, 1]] * 4 + [[]] * 5, edge_fixed=[[0.0, 0.0]] * 4 + [[]] * 5,
        bias_logic=[[0]] * 4 + [[1]] * 5, bias_fixed=[[0.0]] * 4 + [[0.0]] * 5)
    netgen.write_files(spec, tmp_path / "cfg")
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "inputs").mkdir()
    write_data(tmp_path / "data/train.csv", 100, seed=1)
    write_data(tmp_path / "data/valid.csv", 60, [int(i % 5 == 0) for i in range(60)], 3.0, seed=2)
    write_data(tmp_path / "data/test.csv", 40, [int(i % 4 == 0) for i in range(40)], 3.0, seed=3)
    values = dict(PARAMS, neuron_num=9, optimizer=2, adam_eps=0, alpha=0, lr_scheduler=0,
                  **{f"{k}_datas": f"cfg/{k}.dat" for k in ("graph", "logic", "fixwb",
                                                             "shared_w", "shared_b")})
    (tmp_path / "inputs/simulparams.dat").write_text(
        "".join(f"{name:<27}{value}\n" for name, value in values.items()))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out/backup.dat").write_text("an earlier run's backup\n")
    assert main(["train", "--backend", "cpu"]) == 3
    captured = capsys.readouterr()
    assert ("Exploding iteration.\nThe weights and biases went non-finite (NaN or infinite); "
            "training stops") in captured.out
    assert captured.err.startswith("implicit-nn: error: out/results.dat: training never had a "
                                   "finite model: the weights and biases went non-finite at its "
                                   "first validation (epoch 1, minibatch 2)")
    rows = log_rows(tmp_path / "out/results.dat")
    assert len(rows) == 1 and np.isfinite(float(rows[0][2]))          # the loss is finite
    assert (tmp_path / "out/backup.dat").read_text() == "an earlier run's backup\n"
