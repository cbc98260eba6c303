"""EnginePlan: what every backend derives from (Network, Params, PERT levels), computed once.

The reference reads these as NumPy arrays, the numba engine gets them packed in field order
(engine/packing.py generates the unpacking from `EnginePlan.kernel_fields()`), the GPU engine
uploads them by name. Names are the Network's (the original's C names, inputs.md §4.6) for what
comes from the files, and domain names for what is derived here; a quirk mask lives here once
(engine.md §14, engine Q21: the launch coverage limits; the data columns the input copy reaches).
"""
from dataclasses import dataclass, fields

import numpy as np

from implicit_nn.engine.blocks import block_segments, neuron_blocks
from implicit_nn.engine.loss_ids import loss_id
from implicit_nn.solver import SolverOptions

f32 = np.float32


@dataclass(frozen=True)
class Settings:
    """The parameter file's engine settings, typed as the kernels use them (float32 or int)."""
    tol_fixit: np.float32
    maxiter_fix: int
    loss: int                      # losses.LOSS_IDS of train_lossfunction_type
    optimizer: int
    nesterov: int
    adam_beta1: np.float32         # the BASE β1: Nesterov's look-ahead uses it (engine Q14)
    adam_beta2: np.float32
    adam_eps: np.float32
    alpha: np.float32              # L2 factor
    clipping: int
    clipping_threshold: np.float32
    # -- the solver (solver.py; command-line options, not parameter-file entries)
    tol_backward: np.float32       # the adjoint's stop rule (default tol_fixit, maxiter_fix)
    maxiter_backward: int
    solver: int                    # solver.FAITHFUL or solver.ANDERSON
    anderson_m: int
    anderson_beta: np.float32
    anderson_start: int

    @classmethod
    def of(cls, params, solver=None):
        solver = SolverOptions() if solver is None else solver
        derived = {"loss": loss_id(params.train_lossfunction_type),
                   "tol_backward": solver.tol_backward_of(params),
                   "maxiter_backward": solver.maxiter_backward_of(params),
                   "solver": solver.method_id, "anderson_m": solver.anderson_m,
                   "anderson_beta": solver.anderson_beta, "anderson_start": solver.anderson_start}
        values = {}
        for field in fields(cls):
            value = derived[field.name] if field.name in derived else getattr(params, field.name)
            values[field.name] = f32(value) if field.type is np.float32 else int(value)
        return cls(**values)

    def stop_rule(self, direction):
        """(tol, maxiter) of the forward (base.FORWARD, 0) or adjoint (1) fixed point."""
        if direction == 0:
            return self.tol_fixit, self.maxiter_fix
        return self.tol_backward, self.maxiter_backward


@dataclass(frozen=True, eq=False)
class EnginePlan:
    """Sizes, quirk limits and int64 index arrays, in the order the numba kernels unpack them.

    Scalars first (int), then arrays; every array is a private C-contiguous int64 copy."""
    # -- sizes and limits
    neuron_num: int
    input_num: int
    output_num: int
    slot_num: int                  # A = all_input_num (one bias per input slot)
    edge_num: int                  # E = all_neighbour_num (one weight per edge)
    neuron_limit: int              # neurons the original's 2-D launch grid reaches (§14, engine Q21)
    source_limit: int              # source neurons of the weight-gradient kernel (§14, engine Q21)
    level_path: int                # 1: ff_optimization, the PERT level path (§4, §8)
    depth: int                     # dist_max of the levels (0 on the implicit path)
    block_solver: int              # 1: --solver blocks on the implicit path (blocks.py)
    largest_block: int             # the cyclic segment with the most slots (−1: none)
    # -- per neuron
    bias_number: np.ndarray
    first_ind_bias: np.ndarray
    neighbour_number: np.ndarray
    first_ind_neighbour: np.ndarray
    dist: np.ndarray               # PERT level (zeros on the implicit path)
    level_order: np.ndarray        # neurons by level, file order within a level
    dense_run: np.ndarray          # 1: the out-edges target consecutive ascending slots
    child_run: np.ndarray          # neurons i, i+1, … whose out-edges target i's slots, in order
    value_runs: np.ndarray         # boundaries 0 … neuron_limit of the runs _value_runs finds
    level_segments: np.ndarray     # boundaries in level_order of the segments _level_segments finds
    segment_starts: np.ndarray     # blocks.block_segments: the block solver's segments as
    segment_cyclic: np.ndarray     # pieces (boundaries), 1 for a segment that is iterated,
    piece_first: np.ndarray        # and each piece's neurons piece_first … piece_last−1
    piece_last: np.ndarray
    # -- per slot
    activation_type: np.ndarray
    bias_logic: np.ndarray
    parent_number: np.ndarray
    first_ind_parent: np.ndarray
    parent_run: np.ndarray         # slots k, k+1, … whose parents are k's, in order (a layer)
    slot_owner: np.ndarray
    dist_input: np.ndarray         # level of the slot's neuron (zeros on the implicit path)
    data_column: np.ndarray        # data column copied into the slot, −1 if none
    # -- per edge (file order) and per parent position (slot order, ascending edge index)
    edge_source: np.ndarray
    edge_target: np.ndarray
    graph_logic: np.ndarray
    graph_p: np.ndarray            # source neuron of each parent position
    parent_edge: np.ndarray        # edge of each parent position
    # -- outputs: the input slots of the output neurons in slot order, and whose they are
    output_slots: np.ndarray
    slot_output: np.ndarray        # output index r (0 … O−1) of each of those slots
    # -- shared groups (members[starts[g]:starts[g+1]] is group g, file order)
    weight_group_members: np.ndarray
    weight_group_starts: np.ndarray
    bias_group_members: np.ndarray
    bias_group_starts: np.ndarray
    # -- host only (not packed for the kernels)
    settings: Settings = None
    weight_groups_disjoint: bool = True    # no edge in two groups: groups may be summed at once
    bias_groups_disjoint: bool = True

    @classmethod
    def kernel_fields(cls):
        """(name, is_array) of the packed fields, in order."""
        return tuple((f.name, f.type is np.ndarray) for f in fields(cls) if f.type in (int, np.ndarray))

    def arrays(self):
        """{name: int64 array} of every packed array."""
        return {name: getattr(self, name) for name, is_array in self.kernel_fields() if is_array}

    @classmethod
    def build(cls, network, params, levels=None, solver=None):
        """The plan of `network`; `solver` (a name or a solver.SolverOptions) "blocks" makes the
        implicit path solve block by block (the level path evaluates every neuron once already
        and ignores it)."""
        solver = SolverOptions.coerce(solver)
        net = network
        k, slots, edges = net.neuron_num, net.all_input_num, net.all_neighbour_num
        neuron_limit = min(k, 16 * -(-slots // 16))
        level_path = levels is not None
        dist = _int64(levels.dist) if level_path else np.zeros(k, np.int64)
        order = _int64(np.argsort(dist, kind="stable"))
        value_runs = _value_runs(net, neuron_limit)
        first_output = k - net.output_num
        output_slots = np.arange(net.first_ind_bias[first_output] if net.output_num else slots,
                                 slots, dtype=np.int64)
        w_members, w_starts = _flatten(net.shared_weight_groups)
        b_members, b_starts = _flatten(net.shared_bias_groups)
        segment_starts, segment_cyclic, piece_first, piece_last = block_segments(
            net, *neuron_blocks(net), value_runs, neuron_limit)
        return cls(
            neuron_num=k, input_num=net.input_num, output_num=net.output_num, slot_num=slots,
            edge_num=edges, neuron_limit=neuron_limit,
            source_limit=min(k, 256 * -(-edges // 256)),
            level_path=int(level_path), depth=int(levels.dist_max) if level_path else 0,
            block_solver=int(solver.method == "blocks" and not level_path),
            largest_block=_largest_block(net, segment_starts, segment_cyclic, piece_first,
                                         piece_last),
            bias_number=_int64(net.bias_number), first_ind_bias=_int64(net.first_ind_bias),
            neighbour_number=_int64(net.neighbour_number),
            first_ind_neighbour=_int64(net.first_ind_neighbour),
            dist=dist, level_order=order,
            dense_run=_int64([_dense_run(net, i) for i in range(k)]),
            child_run=_shared_runs(net.edge_target, net.first_ind_neighbour, net.neighbour_number),
            value_runs=value_runs,
            level_segments=_level_segments(order, dist, value_runs, neuron_limit),
            segment_starts=segment_starts, segment_cyclic=segment_cyclic,
            piece_first=piece_first, piece_last=piece_last,
            activation_type=_int64(net.activation_type), bias_logic=_int64(net.bias_logic),
            parent_number=_int64(net.parent_number), first_ind_parent=_int64(net.first_ind_parent),
            parent_run=_shared_runs(net.graph_p, net.first_ind_parent, net.parent_number),
            slot_owner=_int64(net.slot_owner),
            dist_input=_int64(levels.dist_input) if level_path else np.zeros(slots, np.int64),
            data_column=_data_columns(net, neuron_limit),
            edge_source=_int64(net.edge_source), edge_target=_int64(net.edge_target),
            graph_logic=_int64(net.graph_logic), graph_p=_int64(net.graph_p),
            parent_edge=_int64(net.parent_edge),
            output_slots=output_slots, slot_output=_int64(net.slot_owner)[output_slots] - first_output,
            weight_group_members=w_members, weight_group_starts=w_starts,
            bias_group_members=b_members, bias_group_starts=b_starts,
            settings=Settings.of(params, solver),
            weight_groups_disjoint=np.unique(w_members).size == w_members.size,
            bias_groups_disjoint=np.unique(b_members).size == b_members.size)


def _largest_block(net, segment_starts, segment_cyclic, piece_first, piece_last):
    """The cyclic segment (block) with the most slots, the first of equals; −1 if none."""
    ends = np.concatenate([[0], np.cumsum(_int64(net.bias_number))])
    piece_slots = ends[piece_last] - ends[piece_first]
    slots = [piece_slots[segment_starts[s]:segment_starts[s + 1]].sum() if segment_cyclic[s] else -1
             for s in range(segment_cyclic.size)]
    return int(np.argmax(slots)) if slots and max(slots) >= 0 else -1


def _int64(values):
    return np.array(values, dtype=np.int64)


def _flatten(groups):
    members = np.concatenate([_int64(g) for g in groups]) if groups else np.zeros(0, np.int64)
    starts = np.zeros(len(groups) + 1, np.int64)
    starts[1:] = np.cumsum([len(g) for g in groups])
    return members, starts


def _data_columns(network, neuron_limit):
    """The input copy writes data column i into the first slot of input neuron i, for the
    neurons the launch grid reaches (§14)."""
    columns = np.full(network.all_input_num, -1, np.int64)
    inputs = np.arange(min(network.input_num, neuron_limit))
    first = _int64(network.first_ind_bias)[inputs]
    keep = first < network.all_input_num
    columns[first[keep]] = inputs[keep]
    return columns


def _value_runs(net, neuron_limit):
    """Boundaries [0, …, neuron_limit] of runs of neurons whose values the numba kernels compute
    in one flat loop: consecutive single-input neurons with consecutive slots and one activation
    kind (a layer); every other neuron is a run of its own."""
    count = _int64(net.bias_number)[:neuron_limit]
    first = _int64(net.first_ind_bias)[:neuron_limit]
    kind = np.full(neuron_limit, -1, np.int64)
    single = count == 1
    kind[single] = _int64(net.activation_type)[first[single]]
    joins = single[1:] & single[:-1] & (first[1:] == first[:-1] + 1) & (kind[1:] == kind[:-1])
    inner = np.flatnonzero(~joins) + 1
    return np.concatenate([[0], inner, [neuron_limit]]).astype(np.int64) if neuron_limit else \
        np.zeros(1, np.int64)


def _level_segments(order, dist, value_runs, neuron_limit):
    """Boundaries [0, …, K] of segments of level_order that the level path treats at once:
    consecutive neurons of one level and one value run (no edge joins neurons of one level, so
    all their parent sums may come before all their values)."""
    run = np.searchsorted(value_runs, order, side="right")
    run[order >= neuron_limit] = -1 - order[order >= neuron_limit]     # a segment of its own
    joins = (order[1:] == order[:-1] + 1) & (dist[order[1:]] == dist[order[:-1]]) & \
        (run[1:] == run[:-1])
    return np.concatenate([[0], np.flatnonzero(~joins) + 1, [order.size]]).astype(np.int64)


def _dense_run(net, i):
    """Do neuron i's out-edges target consecutive ascending slots (a dense layer)?"""
    first, count = net.first_ind_neighbour[i], net.neighbour_number[i]
    targets = np.asarray(net.edge_target[first:first + count])
    return bool(count) and bool(np.all(np.diff(targets) == 1))


def _shared_runs(members, first, count):
    """run[r] = how many of rows r, r+1, … have row r's list members[first[r]:first[r]+count[r]]
    (the same entries in the same order): the rows of a dense layer share their parents (slots)
    or their targets (neurons), and the numba kernels sum such rows as one tile (≥ 1)."""
    lists = [tuple(np.asarray(members[f:f + c]).tolist()) for f, c in zip(first, count)]
    run = np.ones(len(lists), np.int64)
    for r in range(len(lists) - 2, -1, -1):
        if lists[r] == lists[r + 1]:
            run[r] = run[r + 1] + 1
    return run
