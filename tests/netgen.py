"""Random hypergraph networks for engine tests (inputs.md §4 file formats).

`random_network` writes graph / logic / fixwb / shared_w / shared_b files into a folder and reads
them back with `implicit_nn.network.read_network`; `derived_arrays` recomputes the CSR arrays
straight from the generated structure, an independent check of the reader.
"""
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

SMOOTH_ACTIVATIONS = (0, 1, 2, 4, 8, 9, 11)   # differentiable everywhere: safe for finite differences

ENGINE_DEFAULTS = dict(
    tol_fixit=np.float32(1e-6), maxiter_fix=200, alpha=np.float32(0.0), train_lossfunction_type="MSE",
    optimizer=1, nesterov=0, grad_alpha=np.float32(0.01), adam_alpha=np.float32(0.001),
    adam_beta1=np.float32(0.9), adam_beta2=np.float32(0.999), adam_eps=np.float32(1e-8),
    ff_optimization=0, clipping=0, clipping_threshold=np.float32(1.0), mini_batch_size=4,
)


@dataclass
class NetSpec:
    """A network as lists, in file order: per neuron its out-edges and its input slots."""
    input_num: int
    output_num: int
    edges: list                      # per neuron: list of (target neuron, target slot), 0-based
    slots: list                      # per neuron: list of activation ids
    edge_logic: list                 # per neuron: list of 0/1
    edge_fixed: list                 # per neuron: list of float (used where logic 0)
    bias_logic: list
    bias_fixed: list
    shared_weights: list = field(default_factory=list)   # groups of (src, tgt, slot)
    shared_biases: list = field(default_factory=list)    # groups of (neuron, slot)

    @property
    def neuron_num(self):
        return len(self.slots)


def params_for(folder, spec, **overrides):
    """A Params stand-in: the network file names and counts plus engine settings."""
    folder = Path(folder)
    values = dict(ENGINE_DEFAULTS)
    values.update(
        neuron_num=spec.neuron_num, input_num=spec.input_num, output_num=spec.output_num,
        shared_weights_num=len(spec.shared_weights), shared_biases_num=len(spec.shared_biases),
        graph_datas=str(folder / "graph.dat"), logic_datas=str(folder / "logic.dat"),
        fixwb_datas=str(folder / "fixwb.dat"), shared_w_datas=str(folder / "shared_w.dat"),
        shared_b_datas=str(folder / "shared_b.dat"),
    )
    values.update(overrides)
    return SimpleNamespace(**values)


def generate(rng, neurons=8, io=2, cyclic=True, max_inputs=2, activations=SMOOTH_ACTIVATIONS,
             parents_per_slot=(1, 2), fixed_prob=0.15, shared_weight_groups=1, shared_bias_groups=1,
             simple_outputs=False):
    """A random NetSpec with `io` input and `io` output neurons (targets are the inputs, engine Q24).

    Every non-input slot gets parents; acyclic graphs only use edges from lower to higher ids,
    cyclic ones also back edges and self loops. simple_outputs: outputs have one identity slot
    and no out-edges (what bce_multilabeling requires).
    """
    k = neurons
    first_output = k - io
    slots = []
    for n in range(k):
        if n < io or (simple_outputs and n >= first_output):
            count = 1
        else:
            count = int(rng.integers(1, max_inputs + 1))
        if simple_outputs and n >= first_output:
            slots.append([0])
        else:
            slots.append([int(a) for a in rng.choice(activations, size=count)])
    edges = [[] for _ in range(k)]
    seen = set()
    for t in range(io, k):
        for j in range(len(slots[t])):
            sources = [s for s in range(k) if (cyclic or s < t)]
            if simple_outputs:
                sources = [s for s in sources if s < first_output]
            for s in rng.choice(sources, size=int(rng.integers(*parents_per_slot, endpoint=True)), replace=False):
                if (int(s), t, j) not in seen:
                    seen.add((int(s), t, j))
                    edges[int(s)].append((t, j))
    if cyclic and not simple_outputs:   # make sure there is a true cycle
        s, t = first_output, io
        if (s, t, 0) not in seen:
            seen.add((s, t, 0))
            edges[s].append((t, 0))
    for n in range(k):
        order = rng.permutation(len(edges[n]))
        edges[n] = [edges[n][i] for i in order]

    def logic_and_values(count):
        logic = [0 if rng.random() < fixed_prob else 1 for _ in range(count)]
        values = [float(np.float32(round(rng.uniform(-0.5, 0.5), 6))) for _ in range(count)]
        return logic, values

    edge_logic, edge_fixed, bias_logic, bias_fixed = [], [], [], []
    for n in range(k):
        lg, val = logic_and_values(len(edges[n]))
        edge_logic.append(lg)
        edge_fixed.append(val)
        lg, val = logic_and_values(len(slots[n]))
        bias_logic.append(lg)
        bias_fixed.append(val)

    all_edges = [(s, t, j) for s in range(k) for (t, j) in edges[s]]
    order = rng.permutation(len(all_edges))
    shared_weights, used = [], 0
    for _ in range(shared_weight_groups):
        group = [all_edges[i] for i in order[used:used + 2]]
        used += 2
        if len(group) == 2:
            shared_weights.append(group)
    all_slots = [(n, j) for n in range(k) for j in range(len(slots[n]))]
    order = rng.permutation(len(all_slots))
    shared_biases = []
    for g in range(shared_bias_groups):
        group = [all_slots[i] for i in order[2 * g:2 * g + 2]]
        if len(group) == 2:
            shared_biases.append(group)
    return NetSpec(io, io, edges, slots, edge_logic, edge_fixed, bias_logic, bias_fixed,
                   shared_weights, shared_biases)


def write_files(spec, folder):
    """graph / logic / fixwb / shared files in the generator's line format (inputs.md §4.2-4.10)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    graph, logic, fixwb = [], [], []
    for n in range(spec.neuron_num):
        edge_text = "".join(f"{t + 1} {j + 1}; " for t, j in spec.edges[n])
        acts = " ".join(str(a) for a in spec.slots[n])
        graph.append(f"{len(spec.edges[n])} ### {edge_text}### {len(spec.slots[n])} ### {acts} ")
        logic.append(" ".join(str(v) for v in spec.edge_logic[n] + ["###"] + spec.bias_logic[n]))
        fixed_w = [f"{v:f}" for v, lg in zip(spec.edge_fixed[n], spec.edge_logic[n]) if lg == 0]
        fixed_b = [f"{v:f}" for v, lg in zip(spec.bias_fixed[n], spec.bias_logic[n]) if lg == 0]
        fixwb.append(" ".join(fixed_w + ["###"] + fixed_b))
    (folder / "graph.dat").write_text("\n".join(graph) + "\n")
    (folder / "logic.dat").write_text("\n".join(logic) + "\n")
    (folder / "fixwb.dat").write_text("\n".join(fixwb) + "\n")
    (folder / "shared_w.dat").write_text("".join(
        f"{len(g)} ### " + "".join(f"{s + 1} {t + 1} {j + 1}; " for s, t, j in g) + "\n"
        for g in spec.shared_weights))
    (folder / "shared_b.dat").write_text("".join(
        f"{len(g)} ### " + "".join(f"{n + 1} {j + 1}; " for n, j in g) + "\n" for g in spec.shared_biases))


def derived_arrays(spec):
    """The CSR arrays of inputs.md §4.6 / docs/architecture.md computed directly from the spec."""
    k = spec.neuron_num
    nn = np.array([len(e) for e in spec.edges], np.int64)
    nb = np.array([len(s) for s in spec.slots], np.int64)
    on = np.concatenate([[0], np.cumsum(nn)[:-1]]).astype(np.int64)
    ob = np.concatenate([[0], np.cumsum(nb)[:-1]]).astype(np.int64)
    graph_n = np.array([t for n in range(k) for t, _ in spec.edges[n]], np.int64)
    graph_i = np.array([j for n in range(k) for _, j in spec.edges[n]], np.int64)
    source = np.repeat(np.arange(k), nn)
    target = ob[graph_n] + graph_i if graph_n.size else np.zeros(0, np.int64)
    a = int(nb.sum())
    parent_edge = np.argsort(target, kind="stable")    # per slot, by ascending edge index
    parent_number = np.bincount(target, minlength=a).astype(np.int64)
    fw = np.array([v if lg == 0 else 0.0 for n in range(k) for v, lg in zip(spec.edge_fixed[n], spec.edge_logic[n])], np.float32)
    fb = np.array([v if lg == 0 else 0.0 for n in range(k) for v, lg in zip(spec.bias_fixed[n], spec.bias_logic[n])], np.float32)
    return dict(
        neuron_num=k, input_num=spec.input_num, output_num=spec.output_num,
        all_neighbour_num=int(nn.sum()), all_input_num=a,
        neighbour_number=nn, bias_number=nb, first_ind_neighbour=on, first_ind_bias=ob,
        graph_n=graph_n, graph_i=graph_i,
        graph_logic=np.array([v for lg in spec.edge_logic for v in lg], np.int64), fix_weight=fw,
        activation_type=np.array([v for s in spec.slots for v in s], np.int64),
        bias_logic=np.array([v for lg in spec.bias_logic for v in lg], np.int64), fix_bias=fb,
        parent_number=parent_number,
        first_ind_parent=np.concatenate([[0], np.cumsum(parent_number)[:-1]]).astype(np.int64),
        graph_p=source[parent_edge], graph_p_ind_n=(parent_edge - on[source[parent_edge]]),
        edge_source=source, edge_target=target, parent_edge=parent_edge,
        slot_owner=np.repeat(np.arange(k), nb),
        shared_weight_groups=tuple(
            np.array([on[s] + spec.edges[s].index((t, j)) for s, t, j in g], np.int64) for g in spec.shared_weights),
        shared_bias_groups=tuple(np.array([ob[n] + j for n, j in g], np.int64) for g in spec.shared_biases),
    )


def levels_of(spec):
    """Longest-path levels of an acyclic spec (engine.md §4.1), by a topological sweep."""
    arrays = derived_arrays(spec)
    dist = np.zeros(spec.neuron_num, np.int64)
    for src in range(spec.neuron_num):          # acyclic specs only have edges src < tgt
        for t, _ in spec.edges[src]:
            dist[t] = max(dist[t], dist[src] + 1)
    return SimpleNamespace(dist=dist, dist_input=dist[arrays["slot_owner"]], dist_max=int(dist.max(initial=0)))


def random_network(folder, seed=0, params_overrides=None, **options):
    """Generate, write and read back a random network: (network, params stand-in, spec)."""
    spec = generate(np.random.default_rng(seed), **options)
    write_files(spec, folder)
    params = params_for(folder, spec, **(params_overrides or {}))
    from implicit_nn.network import read_network
    return read_network(params), params, spec


def random_parameters(network, seed=0, scale=0.4):
    """Small random weights and biases (contractive fixed point) with the fixed values applied."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-scale, scale, network.all_neighbour_num).astype(np.float32)
    b = rng.uniform(-scale, scale, network.all_input_num).astype(np.float32)
    w, b = network.apply_fixed(w, b)
    for group in network.shared_weight_groups:
        w[group] = w[group[0]]
    for group in network.shared_bias_groups:
        b[group] = b[group[0]]
    return w, b
