"""The blocks of the block solver (`--solver blocks`): the strongly connected components of the
neuron graph (an edge i → j when an out-edge of neuron i feeds a slot of neuron j), in
topological order. A block of one neuron without a self-edge is acyclic and is evaluated once;
every other block is a cycle and is iterated on its own (cpu_kernels._forward_blocks).
"""
import numpy as np


def neuron_blocks(network):
    """(neurons, starts, cyclic): block q is neurons[starts[q]:starts[q+1]] (ascending), blocks in
    topological order (every edge goes to the same or a later block); cyclic[q] is 1 for a
    block that must be iterated."""
    k = network.neuron_num
    owner = np.asarray(network.slot_owner, np.int64)
    targets = np.asarray(network.edge_target, np.int64)
    first = np.asarray(network.first_ind_neighbour, np.int64)
    count = np.asarray(network.neighbour_number, np.int64)
    successors = [owner[targets[first[i]:first[i] + count[i]]] for i in range(k)]
    components = _tarjan(k, successors)[::-1]       # Tarjan finds sinks first
    neurons = np.concatenate([np.sort(c) for c in components]) if k else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum([len(c) for c in components])]).astype(np.int64)
    cyclic = np.array([len(c) > 1 or c[0] in successors[c[0]] for c in components], np.int64)
    return neurons.astype(np.int64), starts, cyclic


def _tarjan(k, successors):
    """Strongly connected components (lists of neurons), each after every component it reaches;
    iterative, so that deep graphs do not hit Python's recursion limit."""
    index = np.full(k, -1, np.int64)
    low = np.zeros(k, np.int64)
    on_stack = np.zeros(k, bool)
    stack, components, counter = [], [], 0
    for root in range(k):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack[node] = True
            nexts = successors[node]
            while position < len(nexts):
                child = nexts[position]
                position += 1
                if index[child] < 0:
                    work.append((node, position))
                    work.append((child, 0))
                    break
                if on_stack[child]:
                    low[node] = min(low[node], index[child])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack[member] = False
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components


def block_segments(network, neurons, starts, cyclic, value_runs, neuron_limit):
    """What the block solver treats at once: (segment_starts, segment_cyclic, piece_first,
    piece_last). A segment is a cyclic block, or a run of consecutive acyclic blocks none of
    which feeds another of the run (a layer: its parent sums may all come before its values);
    segment s is the pieces segment_starts[s] … segment_starts[s+1]−1, each the neurons
    piece_first … piece_last−1: consecutive, in one value run (one flat activation loop, their
    slots consecutive), all below or one at or above the launch limit (engine Q21)."""
    k = network.neuron_num
    run = np.searchsorted(np.asarray(value_runs), np.arange(k), side="right")
    run[neuron_limit:] = -1 - np.arange(neuron_limit, k)         # one piece each
    feeders = _feeders(network)
    segment_starts, segment_cyclic, piece_first, piece_last = [0], [], [], []
    q, blocks = 0, len(cyclic)
    while q < blocks:
        members = list(neurons[starts[q]:starts[q + 1]])
        q += 1
        if not cyclic[q - 1]:
            inside = set(members)
            while q < blocks and not cyclic[q] and not feeders[neurons[starts[q]]] & inside:
                members.append(neurons[starts[q]])
                inside.add(neurons[starts[q]])
                q += 1
        for n in sorted(members):
            if piece_last and piece_last[-1] == n and run[n] == run[n - 1] and \
                    len(piece_first) > segment_starts[-1]:
                piece_last[-1] = n + 1
            else:
                piece_first.append(n)
                piece_last.append(n + 1)
        segment_starts.append(len(piece_first))
        segment_cyclic.append(int(cyclic[q - 1]))
    return tuple(np.array(v, np.int64) for v in (segment_starts, segment_cyclic, piece_first,
                                                 piece_last))


def _feeders(network):
    """The set of neurons with an edge into neuron i, for every i."""
    owner = np.asarray(network.slot_owner, np.int64)
    sources = np.asarray(network.graph_p, np.int64)
    first = np.asarray(network.first_ind_parent, np.int64)
    count = np.asarray(network.parent_number, np.int64)
    feeders = [set() for _ in range(network.neuron_num)]
    for k in range(owner.size):
        feeders[owner[k]].update(int(s) for s in sources[first[k]:first[k] + count[k]])
    return feeders
