"""`--solver blocks` (issue 13 item 3): the strongly connected components solved one at a time.

The blocks are the graph's strongly connected components in topological order (checked against
plain reachability); the block solver's outputs, loss and gradients equal the faithful solver's
to the fixed-point tolerance on random hypergraphs with several cyclic blocks and on the paper's
v1/v2 layers; its gradient passes the float64 finite-difference check; the option reaches the
engine from the API and the command line, and the backends without it refuse it in one line.
"""
import numpy as np
import pytest

from conftest import example_here, example_params
from implicit_nn import cli, train
from implicit_nn.engine import make_engine
from implicit_nn.engine.blocks import neuron_blocks
from implicit_nn.errors import InputError
from implicit_nn.gradcheck import finite_differences
from test_stages import data, paper_case, random_case

SEVERAL_BLOCKS = (25, 29, 35, 38)       # random graphs with 2-4 cyclic blocks (and acyclic ones)
TIGHT = dict(tol_fixit=np.float32(1e-7), maxiter_fix=500)


def several_blocks(tmp_path, seed, **params):
    return random_case(tmp_path, seed, neurons=16, io=2, max_inputs=2, parents_per_slot=(1, 1),
                       params={**TIGHT, **params})


def successors(net, i):
    first, count = net.first_ind_neighbour[i], net.neighbour_number[i]
    return {int(net.slot_owner[t]) for t in net.edge_target[first:first + count]}


def reachable(net):
    """reach[i, j]: a path of at least one edge from neuron i to neuron j."""
    k = net.neuron_num
    reach = np.zeros((k, k), bool)
    for i in range(k):
        todo = list(successors(net, i))
        while todo:
            j = todo.pop()
            if not reach[i, j]:
                reach[i, j] = True
                todo.extend(successors(net, j))
    return reach


@pytest.mark.parametrize("seed", SEVERAL_BLOCKS + (3, 4))
def test_blocks_are_the_strongly_connected_components_in_topological_order(tmp_path, seed):
    net = several_blocks(tmp_path, seed)[0]
    neurons, starts, cyclic = neuron_blocks(net)
    assert sorted(neurons) == list(range(net.neuron_num))
    block = np.empty(net.neuron_num, np.int64)
    for q in range(starts.size - 1):
        members = neurons[starts[q]:starts[q + 1]]
        assert list(members) == sorted(members)
        block[members] = q
    reach = reachable(net)
    same = reach & reach.T
    for i in range(net.neuron_num):
        for j in range(net.neuron_num):
            assert (block[i] == block[j]) == (i == j or same[i, j])
        assert all(block[j] >= block[i] for j in successors(net, i))     # topological
    for q in range(starts.size - 1):
        first = neurons[starts[q]]
        assert cyclic[q] == int(starts[q + 1] - starts[q] > 1 or reach[first, first])
    if seed in SEVERAL_BLOCKS:
        assert cyclic.sum() >= 2 and (cyclic == 0).any()


@pytest.mark.parametrize("seed", SEVERAL_BLOCKS)
def test_segments_cover_the_blocks_in_order(tmp_path, seed):
    """Segments: each neuron once, in topological order; an acyclic segment has no edge inside
    (its parent sums may all come first); a piece is consecutive neurons of one value run."""
    net, prm, _, _, _ = several_blocks(tmp_path, seed)
    plan = make_engine(net, prm, "cpu", solver="blocks").plan
    segment = np.empty(net.neuron_num, np.int64)
    seen = []
    for s in range(plan.segment_cyclic.size):
        members = [n for p in range(plan.segment_starts[s], plan.segment_starts[s + 1])
                   for n in range(plan.piece_first[p], plan.piece_last[p])]
        seen += members
        segment[members] = s
        for p in range(plan.segment_starts[s], plan.segment_starts[s + 1]):
            runs = np.searchsorted(plan.value_runs, np.arange(plan.piece_first[p], plan.piece_last[p]),
                                   side="right")
            assert len(set(runs)) == 1
    assert sorted(seen) == list(range(net.neuron_num))
    reach = reachable(net)
    for i in range(net.neuron_num):
        for j in successors(net, i):
            assert segment[j] >= segment[i]
            if segment[j] == segment[i]:
                assert plan.segment_cyclic[segment[i]] == 1 and reach[j, i]


def pair(case):
    """(faithful, blocks) numba engines at the case's parameters."""
    net, prm, levels, w, b = case
    engines = make_engine(net, prm, "cpu", levels=levels), \
        make_engine(net, prm, "cpu", levels=levels, solver="blocks")
    for engine in engines:
        engine.set_parameters(w, b)
    return engines


def near(got, want, what, rtol=1e-3):
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-3)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


CASES = [pytest.param(lambda t, s=s: several_blocks(t, s), id=f"random-{s}") for s in SEVERAL_BLOCKS]
CASES += [pytest.param(lambda t, f=f: paper_case(t, f, **TIGHT), id=f"paper-{f}") for f in ("v1", "v2")]


@pytest.mark.parametrize("case_of", CASES)
def test_block_solver_equals_the_faithful_solver_to_tolerance(tmp_path, case_of):
    faithful, blocks = pair(case_of(tmp_path))
    assert blocks.plan.block_solver == 1 and faithful.plan.block_solver == 0
    x = data(21, faithful.plan.input_num, seed=2)
    near(blocks.predict(x, 8), faithful.predict(x, 8), "predictions")
    assert blocks.predict_solves.converged.all() and faithful.predict_solves.converged.all()
    want, got = faithful.gradient(x), blocks.gradient(x)
    assert got.forward.converged and got.backward.converged
    near(got.loss, want.loss, "loss")
    near(got.weights, want.weights, "G_w")
    near(got.biases, want.biases, "G_b")
    # the largest block alone is iterated: fewer (or as many) sweeps than the whole network
    assert 0 < got.forward.iterations <= want.forward.iterations


def test_block_solver_gradient_passes_gradcheck(tmp_path):
    net, prm, levels, w, b = several_blocks(tmp_path, 29, clipping=0)
    blocks = make_engine(net, prm, "cpu", solver="blocks")
    x = data(4, 2, seed=4)
    _, gw, gb, forward, backward = blocks.gradient(x, w, b)
    assert forward.converged and backward.converged
    fw, fb = finite_differences(net, prm, None, w, b, x)
    floor = 1e-3 * max(np.abs(fw).max(), np.abs(fb).max())
    for got, want, trainable in ((gw, fw, blocks.weight_trainable), (gb, fb, blocks.bias_trainable)):
        error = np.abs(got - want) / np.maximum(np.maximum(np.abs(got), np.abs(want)), floor)
        assert error[trainable].max() < 1e-3


def test_acyclic_graph_on_the_implicit_path_takes_one_pass(tmp_path):
    """ff_optimization 0 on an acyclic graph: every block is evaluated once, the solves say one
    pass, converged; the faithful sweeps reach the same values."""
    net, prm, _, w, b = random_case(tmp_path, 43, False, neurons=12, io=3, max_inputs=3,
                                    params=dict(ff_optimization=0, **TIGHT))
    faithful, blocks = pair((net, prm, None, w, b))
    assert not blocks.plan.segment_cyclic.any() and blocks.plan.largest_block == -1
    x = data(9, 3, seed=1)
    near(blocks.predict(x, 4), faithful.predict(x, 4), "predictions", rtol=1e-5)
    assert list(blocks.predict_solves.iterations) == [1, 1, 1]
    assert blocks.predict_solves.converged.all()


def test_level_path_ignores_the_block_solver(tmp_path):
    case = paper_case(tmp_path, "v0")
    faithful, blocks = pair(case)
    assert blocks.plan.block_solver == 0 and blocks.name == faithful.name
    x = data(7, 5, seed=3)
    np.testing.assert_array_equal(blocks.predict(x, 4), faithful.predict(x, 4))


@pytest.mark.parametrize("backend", ["reference", "gpu"])
def test_backends_without_the_block_solver_refuse_it(tmp_path, backend):
    net, prm, levels, _, _ = paper_case(tmp_path, "v1")
    with pytest.raises(InputError, match="--solver blocks runs on the cpu backend only"):
        if backend == "gpu":        # the check comes before any GPU is looked for
            from implicit_nn.engine import check_solver
            check_solver("blocks", "gpu")
        else:
            make_engine(net, prm, backend, solver="blocks")


def test_train_with_the_block_solver(tmp_path):
    """The bundled v1 example trained for 2 epochs through the API with solver="blocks" and
    with the faithful solver: the engine says which, the results agree to a few per cent."""
    blocks_dir, faithful_dir = tmp_path / "blocks", tmp_path / "faithful"
    blocks = train(example_params(blocks_dir, maxiter_grad=2), backend="cpu", solver="blocks")
    faithful = train(example_params(faithful_dir, maxiter_grad=2), backend="cpu")
    assert (blocks.engine, faithful.engine) == ("cpu (numba), block solver", "cpu (numba)")
    assert blocks.stopped == faithful.stopped == "completed"
    near(blocks.best_metric, faithful.best_metric, "best validation metric", rtol=0.05)


def test_command_line_refuses_the_block_solver_on_the_reference_backend(tmp_path, monkeypatch,
                                                                        capsys):
    path = example_here(tmp_path, monkeypatch)
    assert cli.main(["train", "--quiet", "--backend", "reference", "--solver", "blocks",
                     str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("implicit-nn: error: ") and "--solver blocks" in err
    assert err.count("\n") == 1 and not any((tmp_path / "outputs").iterdir())
