"""PERT levels for the feed-forward path, the original's cycle check and a true one (engine.md §4.1).

The original relaxes `dist[target] = max(dist[target], dist[source] + 1)` in place over all
edges in file order, N times, then does one more assigning sweep as its cycle check. That check
only really tests the last edge into each neuron (engine Q17), so we also run a true
topological test: ff mode on any cyclic graph is refused.
"""

import collections

import numpy as np

from .errors import InputError

Levels = collections.namedtuple("Levels", "dist dist_input dist_max")


def _relax_sweeps(edge_source, graph_n, neuron_num):
    """N in-place sweeps over the edges in file order, then the original's one assigning sweep."""
    dist = np.zeros(neuron_num, dtype=np.int64)
    for _ in range(neuron_num):
        for e in range(edge_source.shape[0]):
            cand = dist[edge_source[e]] + 1
            if cand > dist[graph_n[e]]:
                dist[graph_n[e]] = cand
    extra = dist.copy()
    for e in range(edge_source.shape[0]):
        extra[graph_n[e]] = max(dist[graph_n[e]], dist[edge_source[e]] + 1)
    return dist, extra


def _topological_order(network):
    """Kahn's order of the neurons; shorter than neuron_num when the graph has a cycle."""
    indegree = np.bincount(network.graph_n, minlength=network.neuron_num)
    ready = list(np.flatnonzero(indegree == 0))
    first, count = network.first_ind_neighbour, network.neighbour_number
    order = []
    while ready:
        n = ready.pop()
        order.append(n)
        targets = network.graph_n[first[n]:first[n] + count[n]]
        np.subtract.at(indegree, targets, 1)
        ready.extend(t for t in np.unique(targets) if indegree[t] == 0)
    return order


def _relax(network):
    """(dist, extra) of the original's relaxation. On an acyclic graph N in-place sweeps in any
    edge order end at the longest paths (a neuron whose longest path has s edges is right after
    sweep s, and no value ever exceeds it), and the extra sweep changes nothing: computed here in
    topological order without a compiler. Only a cyclic graph, whose values depend on the file
    order, runs the sweeps themselves (compiled: N·E steps)."""
    order = _topological_order(network)
    if len(order) < network.neuron_num:
        import numba
        sweeps = numba.njit(cache=True)(_relax_sweeps)
        return sweeps(network.edge_source, network.graph_n, network.neuron_num)
    dist = np.zeros(network.neuron_num, dtype=np.int64)
    first, count = network.first_ind_neighbour, network.neighbour_number
    for n in order:
        targets = network.graph_n[first[n]:first[n] + count[n]]
        np.maximum.at(dist, targets, dist[n] + 1)
    return dist, dist.copy()


def original_check_fails(network):
    """What the original's cycle check says (it can miss cycles, engine Q17)."""
    dist, extra = _relax(network)
    return bool(np.any(dist != extra))


def is_cyclic(network):
    """True cycle test (Kahn): some neuron is never freed of incoming edges."""
    return len(_topological_order(network)) < network.neuron_num


def pert_levels(network):
    """dist / dist_input / dist_max as the original computes them; InputError on any cycle."""
    graph_path = getattr(network, "graph_path", None)
    dist, extra = _relax(network)
    if np.any(dist != extra):
        raise InputError("Logical error: cycle in the graph (ff_optimization needs an acyclic "
                         "network)", graph_path)
    if is_cyclic(network):
        raise InputError("Logical error: cycle in the graph (the original's check misses this "
                         "cycle; ff_optimization needs an acyclic network)", graph_path)
    dist.flags.writeable = False
    dist_input = dist[network.slot_owner]
    dist_input.flags.writeable = False
    return Levels(dist, dist_input, int(dist.max()) if dist.size else 0)
