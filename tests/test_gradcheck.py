"""`implicit-nn gradcheck`: adjoint vs float64 central differences, through the CLI."""
import numpy as np
import pytest

import netgen
from implicit_nn import gradcheck
from implicit_nn.cli import main
from test_driver import PARAMS


@pytest.fixture
def run_folder(tmp_path, monkeypatch):
    """A cyclic multi-input network with fixed and shared parameters, data and simulparams.dat."""
    spec = netgen.generate(np.random.default_rng(21), neurons=10, io=4, max_inputs=3)
    netgen.write_files(spec, tmp_path / "cfg")
    rows = np.random.default_rng(5).uniform(0.1, 0.9, (12, 4))
    (tmp_path / "train.csv").write_text("".join(" ".join(f"{v:.6f}" for v in r) + "\n" for r in rows))
    values = dict(PARAMS, neuron_num=spec.neuron_num, input_num=4, output_num=4, learn_num=12,
                  input_name="train.csv", initdx="0.3", tol_fixit="1.0e-6", maxiter_fix=200,
                  ff_optimization=0, alpha="0.001",
                  shared_weights_num=len(spec.shared_weights), shared_biases_num=len(spec.shared_biases),
                  graph_datas="cfg/graph.dat", logic_datas="cfg/logic.dat", fixwb_datas="cfg/fixwb.dat",
                  shared_w_datas="cfg/shared_w.dat", shared_b_datas="cfg/shared_b.dat")
    (tmp_path / "simulparams.dat").write_text("".join(f"{k:<27}{v}\n" for k, v in values.items()))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_passes_on_a_good_network(run_folder, capsys):
    assert main(["gradcheck", "simulparams.dat", "--samples", "5"]) == 0
    out = capsys.readouterr().out
    assert "weights: worst relative error" in out and "biases: worst relative error" in out
    assert out.rstrip().endswith("OK (tolerance 0.001)")


def test_cli_fails_with_an_impossible_tolerance(run_folder, capsys):
    assert main(["gradcheck", "simulparams.dat", "--samples", "5", "--tolerance", "1e-15"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_a_wrong_normalisation_is_caught(run_folder, monkeypatch, capsys):
    """The MSE seed is the derivative of ½(y−t)² (engine Q5); dropping the ½ must be detected."""
    monkeypatch.setitem(gradcheck.OBJECTIVE_SCALE, 0, 1.0)
    assert main(["gradcheck", "simulparams.dat", "--samples", "3"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_bad_sample_count_is_one_line(run_folder, capsys):
    assert main(["gradcheck", "simulparams.dat", "--samples", "0"]) == 1
    assert "--samples" in capsys.readouterr().err


@pytest.mark.parametrize("entry,value,message", [
    ("learn_num", "0", "simulparams.dat:17: learn_num must be positive"),
    ("train_lossfunction_type", "Huber", "simulparams.dat:32: Wrong loss function: 'Huber'"),
])
def test_bad_parameters_are_one_line(run_folder, capsys, entry, value, message):
    text = (run_folder / "simulparams.dat").read_text().splitlines()
    (run_folder / "simulparams.dat").write_text("".join(
        (f"{entry:<27}{value}" if line.split()[0] == entry else line) + "\n" for line in text))
    assert main(["gradcheck", "simulparams.dat"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("implicit-nn: error: " + message)
