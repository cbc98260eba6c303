"""check --contraction: the cyclic part, the spectral radius against a dense eigenvalue
computation, the verdicts, and the published v1 (5;32;8) backups."""

import numpy as np
import pytest

import implicit_nn
from conftest import example_here, example_params, require_reference
from implicit_nn import contraction, data
from implicit_nn.cli import main
from implicit_nn.engine.reference import ReferenceEngine
from implicit_nn.network import read_network


def test_cyclic_part_is_every_path_from_a_cycle_to_a_cycle():
    class Graph:                 # edges as Network names them: source and target neuron
        neuron_num = 9
        # 0 -> 1 <-> 2 -> 3 -> 4 <-> 5 -> 6;  7 -> 7 (self loop);  8 isolated
        edge_source = np.array([0, 1, 2, 2, 3, 4, 5, 5, 7])
        graph_n = np.array([1, 2, 1, 3, 4, 5, 4, 6, 7])
    assert np.flatnonzero(contraction.cyclic_neurons(Graph)).tolist() == [1, 2, 3, 4, 5, 7]


def dense_jacobian(network, h, w):
    """J[k, j] = Σ over edges e into slot k from neuron owner(j) of w_e · H[j], one sample."""
    slots = network.all_input_num
    jac = np.zeros((slots, slots))
    first, count = network.first_ind_bias, network.bias_number
    for e in range(network.all_neighbour_num):
        src, k = network.edge_source[e], network.edge_target[e]
        for j in range(first[src], first[src] + count[src]):
            jac[k, j] += w[e] * h[j]
    return jac


@pytest.mark.parametrize("initdx", [1.0, 3.0])
def test_rho_is_the_largest_eigenvalue_of_the_jacobian(tmp_path, initdx):
    params = example_params(tmp_path, initdx=initdx)
    model = implicit_nn.load_network(params, backend="reference")
    network = model.network
    x = data.read_train(params.input_name, params.learn_num, params.input_num)[:12]
    got = contraction.estimate(network, params, model.weights, model.biases, x, iterations=1000)
    engine = ReferenceEngine(network, dict_tight(params), None, np.float64)
    _, a, _ = engine.forward_implicit(x.astype(np.float64), model.weights.astype(np.float64),
                                      model.biases.astype(np.float64))
    h = engine.local_derivatives(a)
    part = contraction.cyclic_neurons(network)[network.slot_owner]
    for d in range(x.shape[0]):
        jac = dense_jacobian(network, h[d], model.weights.astype(np.float64))
        whole = np.abs(np.linalg.eigvals(jac)).max()
        cyclic = np.abs(np.linalg.eigvals(jac[np.ix_(part, part)])).max()
        assert cyclic == pytest.approx(whole, rel=1e-9, abs=1e-12)   # acyclic part adds nothing
        assert got.rho[d] == pytest.approx(whole, rel=2e-3)
    assert got.settled.all() and got.cyclic_neurons == 2


def dict_tight(params):
    return implicit_nn.with_overrides(params, tol_fixit=1e-12, maxiter_fix=2000)


def test_check_contraction_on_the_example(tmp_path, monkeypatch, capsys):
    example_here(tmp_path, monkeypatch)
    assert main(["check", "--contraction", "--samples", "64"]) == 0
    out = capsys.readouterr().out
    assert "cyclic part:      2 neurons, 2 inputs" in out
    assert "64 of 64 samples settled" in out and "verdict:          a contraction" in out


def test_a_map_that_is_no_contraction_is_reported(tmp_path, monkeypatch, capsys):
    """The latent pair feeding each other with weights 4 and -4: a loop gain of -16 at the
    origin, an oscillation the iteration never leaves."""
    from implicit_nn.backup import save_backup
    example_here(tmp_path, monkeypatch)
    model = implicit_nn.load_network("inputs/simulparams.dat")
    network = model.network
    cyclic = contraction.cyclic_neurons(network)
    loop = np.flatnonzero(cyclic[network.edge_source] & cyclic[network.graph_n])
    assert loop.size == 2
    weights = model.weights.copy()
    weights[loop] = [4.0, -4.0]
    save_backup("loop.dat", network, weights, model.biases, 0.0, 0.0, 1.0)
    assert main(["check", "--contraction", "--samples", "64", "--load", "loop.dat"]) == 0
    out = capsys.readouterr().out
    assert "verdict:          NOT converging: for 64 of 64 samples" in out
    assert "stopped by maxiter_fix 50 or a NaN" in out and ", 0 stopped" not in out


def test_published_v1_backups_are_contractions(tmp_path, monkeypatch):
    """Runs 1 and 2 of the original's v1 (5;32;8): rho about 0.5, and the predicted sweeps agree
    with what the float32 solves need."""
    from test_golden_load import historical_params
    ref = require_reference()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.dat").write_text(historical_params("v1_5_32_8", 1, "."))
    params = implicit_nn.read_params("p.dat")
    network = read_network(params)
    x = data.read_train(params.input_name, params.learn_num, params.input_num)[:64]
    for run in (1, 2):
        backup = ref / "inference" / "v1_5_32_8" / f"backup_best_autoencoder_v1_M5_S32_L8-I8_{run}.dat"
        model = implicit_nn.load_network(params, backup, backend="reference")
        c = contraction.estimate(network, params, model.weights, model.biases, x)
        assert c.cyclic_neurons == 8 and c.settled.all()
        assert 0.3 < c.rho.max() < 0.7
        measured = c.engine_solves.iterations
        assert abs(c.sweeps_to(float(params.tol_fixit)) - measured.mean()) < 8
        assert c.engine_solves.converged.all()


def test_no_cycles(tmp_path, monkeypatch, capsys):
    from implicit_nn.tools.make_config import make_autoencoder
    example_here(tmp_path, monkeypatch)
    tag, _, neurons, _ = make_autoencoder(tmp_path / "v0", "v0", 3, 8, 2, 6, 3)
    from implicit_nn.params import write_params
    changes = {f"{k}_datas": f"v0/{k}_autoencoder_{tag}.dat"
               for k in ("graph", "logic", "fixwb", "shared_w", "shared_b")}
    write_params("inputs/simulparams.dat", implicit_nn.read_params(
        "inputs/simulparams.dat", neuron_num=neurons, **changes))
    assert main(["check", "--contraction"]) == 0
    assert "no cycles: the Jacobian is nilpotent" in capsys.readouterr().out
