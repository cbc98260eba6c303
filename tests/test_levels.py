"""PERT levels and cycle checks (engine.md §4.1, engine Q17) on reference configs and small graphs."""

from types import SimpleNamespace

import numpy as np
import pytest

from implicit_nn.errors import InputError
from implicit_nn.levels import is_cyclic, original_check_fails, pert_levels
from implicit_nn.network import read_network
from netgen import generate, params_for, write_files
from test_network import TABLE, example_network, reference_params


def edges_network(n, edges, slots=None):
    """A Network stand-in from (source, target) pairs in file order (one slot per neuron)."""
    edges = sorted(edges, key=lambda e: e[0])                 # file order is by source
    src = np.array([s for s, _ in edges], np.int64)
    tgt = np.array([t for _, t in edges], np.int64)
    count = np.bincount(src, minlength=n)
    return SimpleNamespace(neuron_num=n, edge_source=src, graph_n=tgt, neighbour_number=count,
                           first_ind_neighbour=np.concatenate([[0], np.cumsum(count)[:-1]]),
                           slot_owner=np.arange(n) if slots is None else slots,
                           graph_path="graph.dat")


def transcribed_check(net):
    """The original's loops written out in plain Python (the numba kernel's oracle)."""
    n, src, tgt = net.neuron_num, net.edge_source.tolist(), net.graph_n.tolist()
    dist = [0] * n
    for _ in range(n):
        for s, t in zip(src, tgt):
            dist[t] = max(dist[t], dist[s] + 1)
    extra = list(dist)
    for s, t in zip(src, tgt):
        extra[t] = max(dist[t], dist[s] + 1)
    return dist, extra != dist


def longest_paths(net):
    """Longest path from any source-free neuron, by memoised recursion (DAG only)."""
    parents = [[] for _ in range(net.neuron_num)]
    for s, t in zip(net.edge_source.tolist(), net.graph_n.tolist()):
        parents[t].append(s)
    memo = {}

    def depth(v):
        if v not in memo:
            memo[v] = max((depth(p) + 1 for p in parents[v]), default=0)
        return memo[v]
    return [depth(v) for v in range(net.neuron_num)]


@pytest.mark.parametrize("shape", sorted(TABLE))
def test_v0_reference_levels(shape):
    """Logs of the v0 runs show IF 6.00 (M5) and 8.00 (M7) = dist_max."""
    net = read_network(reference_params("v0", *shape))
    levels = pert_levels(net)
    assert levels.dist_max == (6 if shape[0] == 5 else 8)
    assert levels.dist.tolist() == longest_paths(net)
    assert np.all(levels.dist[:8] == 0)
    assert np.array_equal(levels.dist_input, levels.dist[net.slot_owner])
    assert levels.dist.dtype == np.int64 and levels.dist_input.dtype == np.int64
    assert not is_cyclic(net)


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_implicit_reference_configs_are_refused(family):
    net = read_network(reference_params(family, 5, 32, 8))
    assert is_cyclic(net) and original_check_fails(net)
    with pytest.raises(InputError, match="Logical error: cycle in the graph") as info:
        pert_levels(net)
    assert info.value.path == net.graph_path


def test_worked_example_self_loop(tmp_path):
    net = example_network(tmp_path)
    assert is_cyclic(net)
    with pytest.raises(InputError, match="Logical error: cycle in the graph") as info:
        pert_levels(net)
    assert info.value.path == str(tmp_path / "graph.dat")


def test_cycle_the_original_misses_is_still_refused():
    """engine Q17: 1 <-> 2 closed, but the last edges into 1 and 2 come from the level-0 neuron 3."""
    net = edges_network(4, [(0, 1), (1, 2), (2, 1), (3, 1), (3, 2)])
    assert is_cyclic(net) and not original_check_fails(net)
    with pytest.raises(InputError, match="original's check misses"):
        pert_levels(net)


def test_levels_with_multi_slot_neurons_and_sources_that_are_not_inputs():
    # neuron 4 has no parents (level 0 though not an input); neuron 2 owns slots 2, 3
    net = edges_network(5, [(0, 2), (4, 2), (2, 3), (1, 3), (0, 3)],
                        slots=np.array([0, 1, 2, 2, 3, 4]))
    levels = pert_levels(net)
    assert levels.dist.tolist() == [0, 0, 1, 2, 0]
    assert levels.dist_input.tolist() == [0, 0, 1, 1, 2, 0]
    assert levels.dist_max == 2


@pytest.mark.parametrize("seed", range(8))
def test_random_graphs_against_transcription(tmp_path, seed):
    rng = np.random.default_rng(seed)
    spec = generate(rng, neurons=10, io=2, cyclic=bool(seed % 2), max_inputs=2)
    write_files(spec, tmp_path)
    net = read_network(params_for(tmp_path, spec))
    dist, fails = transcribed_check(net)
    assert original_check_fails(net) == fails
    assert is_cyclic(net) == bool(seed % 2)
    if not seed % 2:
        levels = pert_levels(net)
        assert levels.dist.tolist() == dist == longest_paths(net)


def test_reversed_file_order_needs_all_sweeps():
    """A chain listed against the sweep order settles one level per sweep (no early exit)."""
    n = 12
    net = edges_network(n, [(k + 1, k) for k in range(n - 1)])
    assert pert_levels(net).dist.tolist() == list(range(n - 1, -1, -1))
