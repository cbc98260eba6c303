"""The Python API (implicit_nn): parameters with overrides, training in-process with a result that
says what the logs say, prediction with a backup that reproduces the prediction files, and an
import that loads no engine."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import implicit_nn
from conftest import ROOT, example_here, example_params, log_rows
from implicit_nn import api
from implicit_nn.cformat import cfmt
from implicit_nn.cli import main
from implicit_nn.params import SCHEMA, read_params as read_file

EXAMPLE = ROOT / "inputs" / "simulparams.dat"


def test_import_loads_no_engine():
    code = ("import sys, implicit_nn\nfrom implicit_nn import read_params, train, predict, "
            "load_network, make_params, Params, TrainResult\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'cupy') "
            "or m in ('implicit_nn.driver', 'implicit_nn.engine')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]"]


def test_read_params_overrides_take_the_file_types():
    params = implicit_nn.read_params(EXAMPLE, maxiter_grad=3, tol_fixit=1e-6,
                                     output_name=ROOT / "x.dat")
    assert params.maxiter_grad == 3 and type(params.maxiter_grad) is int
    assert params.tol_fixit == np.float32(1e-6) and type(params.tol_fixit) is np.float32
    assert params.output_name == str(ROOT / "x.dat")
    assert dataclasses.replace(params, maxiter_grad=10, tol_fixit=np.float32(1e-5),
                               output_name="outputs/results_small_1.dat") == read_file(EXAMPLE)
    with pytest.raises(TypeError, match="unknown parameter 'maxiter'"):
        implicit_nn.read_params(EXAMPLE, maxiter=3)
    with pytest.raises(ValueError, match="non-negative integer"):
        implicit_nn.read_params(EXAMPLE, maxiter_grad=-1)
    with pytest.raises(TypeError, match="takes a number"):
        implicit_nn.read_params(EXAMPLE, alpha="0.1")


def test_make_params_defaults_and_missing_entries():
    file_params = read_file(EXAMPLE)
    given = {name: getattr(file_params, name) for name, _ in SCHEMA}
    assert implicit_nn.make_params(**given) == file_params
    required = {name: given[name] for name, _ in SCHEMA if name not in api.PAPER_SETTINGS}
    built = implicit_nn.make_params(**required)
    assert built.tol_fixit == np.float32(1e-5) and built.optimizer == 1 and built.sfreq == 4
    del required["graph_datas"], required["learn_num"]
    with pytest.raises(TypeError, match="needs: learn_num, graph_datas"):
        implicit_nn.make_params(**required)


def test_train_returns_what_the_logs_say_and_prints_nothing(tmp_path, capsys):
    params = example_params(tmp_path, maxiter_grad=2)
    result = implicit_nn.train(params, backend="cpu")
    assert capsys.readouterr().out == ""
    assert result.stopped == "completed" and result.engine == "cpu (numba)"
    rows = log_rows(tmp_path / "outputs" / "results_small_1.dat")
    assert len(rows) == len(result.history) == 2 * 4       # sfreq 4, two epochs
    for row, rec in zip(rows, result.history):
        printed = [str(rec.epoch), str(rec.minibatch)] + [
            cfmt(fmt, v) for fmt, v in zip(
                ("%.2E", "%f", "%f", "%.2f", "%.2f", "%f", "%f", "%.2E", "%.2f"),
                (rec.loss, rec.metric, rec.best_metric, rec.iter_forward, rec.iter_backward,
                 rec.max_weight_gradient, rec.max_bias_gradient, rec.learning_rate, rec.elapsed))]
        assert printed == row
    test_rows = log_rows(tmp_path / "outputs" / "test_metrics_small_1.dat")
    assert [cfmt("%f", r.test_f1) for r in result.history] == [r[4] for r in test_rows]
    final = log_rows(tmp_path / "outputs" / "test_metrics_final_small_1.dat")[0]
    f = result.final
    assert final[:-1] == [str(f.epochs)] + [cfmt("%f", v) for v in (
        f.valid_auc, f.valid_mcc, f.valid_f1, f.test_f1, f.test_mcc, f.test_accuracy,
        f.test_precision, f.test_recall)]
    assert result.best_metric == max(r.metric for r in result.history)
    assert result.columns()["loss"] == [r.loss for r in result.history]
    assert result.paths.backup == params.save_best_model

    # the backup written, loaded in Python: the load-mode run's prediction file and its VF1
    load_mode = implicit_nn.train(implicit_nn.with_overrides(
        params, loaddatas=1, maxiter_grad=0, load_backup=params.save_best_model,
        save_best_model=str(tmp_path / "resaved.dat"),
        predict_name_valid=str(tmp_path / "valid.dat")), backend="cpu")
    model = result.load_model(backend="cpu")
    from implicit_nn import data, metrics
    valid_x, valid_y = data.read_labeled(params.input_name_valid, params.valid_num,
                                         params.input_num)
    pred = model.predict(valid_x)
    lines = (tmp_path / "valid.dat").read_text().splitlines()
    assert ["".join(f"{v:f} " for v in row) for row in pred.astype(np.float64)] == lines
    assert np.array_equal(implicit_nn.predict(params, valid_x, params.save_best_model,
                                              backend="cpu"), pred)
    scores = model.scores(valid_x)
    f1 = metrics.confusion_metrics(scores, valid_y, np.float32(model.threshold)).f1
    assert float(f1) == load_mode.final.valid_f1
    assert np.array_equal(model.classify(valid_x), (scores > np.float32(model.threshold)) * 1)
    with pytest.raises(ValueError, match=r"shape \(rows, 6\)"):
        model.predict(valid_x[:, :5])


def test_cli_is_the_api(tmp_path, monkeypatch, capsys):
    """`implicit-nn train` writes what implicit_nn.train writes (elapsed times aside)."""
    params = example_params(tmp_path, maxiter_grad=1)
    implicit_nn.train(params, backend="cpu")
    api_rows = log_rows(tmp_path / "outputs" / "results_small_1.dat")
    api_pred = (tmp_path / "outputs" / "predict_test_small_1.dat").read_bytes()
    cli_dir = tmp_path / "cli"
    example_here(cli_dir, monkeypatch, maxiter_grad=1)
    assert main(["train", "--backend", "cpu"]) == 0
    assert "Engine: cpu (numba)" in capsys.readouterr().out
    cli_rows = log_rows(cli_dir / "outputs" / "results_small_1.dat")
    assert [r[:-1] for r in cli_rows] == [r[:-1] for r in api_rows]
    assert (cli_dir / "outputs" / "predict_test_small_1.dat").read_bytes() == api_pred


def test_load_network_without_backup_is_the_seeded_start(tmp_path):
    from implicit_nn.network import read_network
    from implicit_nn.rand import GlibcRandom, initial_parameters

    params = example_params(tmp_path)
    model = implicit_nn.load_network(params, backend="reference")
    w, b = initial_parameters(read_network(params), params.initdx, GlibcRandom(params.seed))
    assert np.array_equal(model.weights, w) and np.array_equal(model.biases, b)
    assert (model.threshold, model.mean, model.std) == (0.0, 0.0, 0.0)


def test_input_errors_are_exceptions(tmp_path):
    params = example_params(tmp_path, sfreq=0)
    with pytest.raises(implicit_nn.InputError, match="sfreq must be between 1"):
        implicit_nn.train(params, backend="cpu")
    assert not (tmp_path / "outputs" / "results_small_1.dat").exists()
