"""numba kernels of the CPU engine: one compiled call per training minibatch, one per prediction.

Buffers are slot-major: row = slot (or neuron), column = sample of the minibatch. Every per-(slot,
sample) quantity is computed from the same operands in the same order as the original (fma chains
over parents / out-edges in index order, products over a neuron's inputs in input order), so the
layout does not change a single bit; it only makes the innermost loop run over the samples, whose
chains are independent, so that it vectorises. The gradient sums over samples (§9) are the only
chains along that axis; they run edge by edge in sample order.

fma(a, b, c) is llvm.fma, one rounding (engine.md §13.6); the fma chains over parents and out-edges
run on blocks of LANES samples held in one vector register (lanes.py). No fastmath anywhere.
The network arrays and settings arrive packed (packing.py) and are indexed by their EnginePlan /
Settings names. Under NUMBA_DISABLE_JIT every kernel runs as plain Python (engine/jit.py).
"""
import math
from collections import namedtuple

import numba
import numpy as np

from implicit_nn.engine import cudamath, lanes
from implicit_nn.engine.activations import (ATAN, IDENTITY, RELU, activation, activation_derivative,
                                            host_sigmoid)
from implicit_nn.engine.base import ADJOINT, BIG, FORWARD, keep_iterating
from implicit_nn.engine.lanes import LANES, fma, fma64
from implicit_nn.engine.losses import (BCE_MULTILABEL, MAE, MULTICLASS_CE, MULTILABEL_CE, loss_sum,
                                       softmax_row)
from implicit_nn.engine.packing import LAYOUT, STALE, unpack_plan, unpack_settings
from implicit_nn.solver import ANDERSON, ANDERSON_REG

f32 = np.float32
f64 = np.float64
HALF = LANES // 2   # a dense layer's out-edges: blocks of LANES, then one of HALF
GROUP = 4           # fma chains run interleaved (_chain_sums)
TILE = 6            # rows of a dense layer summed at once (_tile_sums): 12 vector accumulators

# Work buffers, preallocated per engine (slot-major 2-D: [slots or neurons, max minibatch]):
# pre-activations A, Y, H, activation values f, δ (D), the adjoint increment T and the next one,
# one row of sums, one sample's predictions, the look-ahead parameters, the weights in parent
# order, the gradients, δ sample-major for the weight-gradient sums; for the sweeps: each
# neuron's adjoint sum over its children, per-sample maxima, and the flags of what is due; the
# parent sums of a group of slots.
Work = namedtuple("Work", "a y h f delta t t_next acc prob w_ahead b_ahead w_parent gw gb "
                          "delta_rows sums tops y_due a_due finite s_due s_due_next group_sums")

_keep_iterating = numba.njit(cache=True, inline="always")(keep_iterating)

# Anderson's state during one solve (float64 unless said): x_in (float32 [slots, batch], the
# forward sweep's input, which the sweep overwrites), f, t [2, slots, batch] (this and the
# previous sweep's residual and (1 − β)x + βg), the ring of the last m differences d_f, d_t
# [m, slots, batch], their Gram matrix gram [m, m, batch], and scratch: order (int64 [m]), total,
# right, row [batch], gamma [m, batch], a [m, m], z [m], solved (bool [batch]), changed (int64
# [slots]: the rows the last mixing changed).
AndersonHistory = namedtuple("AndersonHistory", "x_in f t d_f d_t gram order total right row gamma "
                                                "a z solved changed")


@numba.njit(cache=True, inline="always")
def _data(x, d, col):
    """x̂: the data value of a slot (first slot of an input neuron), 0 elsewhere."""
    return x[d, col] if col >= 0 else f32(0.0)


@numba.njit(cache=True, inline="always")
def _norm(top, count):
    """The NaN-aware max-norm (§13.3) from the largest |v| seen (negative if every v was NaN)."""
    if top >= 0:
        return top
    return f32(np.nan) if count > 0 else f32(0.0)


# Activation rows: one slot's samples at once, each a separate small function compiled with
# numpy's error model (a division never raises), so that LLVM inlines the activation of the
# constant kind and vectorises the sample loop (arctan 9 -> 0.6 ns per value); inside the large
# sweep kernels neither happens. Every lane computes what the scalar code computes.
@numba.njit(cache=True, error_model="numpy")
def _times_activation(kind, a, out, batch):
    """out[d] = out[d] · f_kind(a[d]) for d < batch (float product, §3.1)."""
    if kind == RELU:
        for d in range(batch):
            out[d] = f32(out[d] * activation(RELU, a[d]))
    elif kind == IDENTITY:
        for d in range(batch):
            out[d] = f32(out[d] * activation(IDENTITY, a[d]))
    elif kind == ATAN:
        for d in range(batch):
            out[d] = f32(out[d] * activation(ATAN, a[d]))
    else:
        for d in range(batch):
            out[d] = f32(out[d] * activation(kind, a[d]))


@numba.njit(cache=True, error_model="numpy")
def _activation_row(kind, a, out, batch):
    """out[d] = f_kind(a[d]) for d < batch."""
    if kind == RELU:
        for d in range(batch):
            out[d] = activation(RELU, a[d])
    elif kind == IDENTITY:
        for d in range(batch):
            out[d] = activation(IDENTITY, a[d])
    elif kind == ATAN:
        for d in range(batch):
            out[d] = activation(ATAN, a[d])
    else:
        for d in range(batch):
            out[d] = activation(kind, a[d])


@numba.njit(cache=True, error_model="numpy")
def _derivative_row(kind, a, out, batch):
    """out[d] = f'_kind(a[d]) for d < batch."""
    if kind == RELU:
        for d in range(batch):
            out[d] = activation_derivative(RELU, a[d])
    elif kind == IDENTITY:
        for d in range(batch):
            out[d] = activation_derivative(IDENTITY, a[d])
    elif kind == ATAN:
        for d in range(batch):
            out[d] = activation_derivative(ATAN, a[d])
    else:
        for d in range(batch):
            out[d] = activation_derivative(kind, a[d])


@numba.njit(cache=True)
def _neuron_values(first_ind_bias, bias_number, activation_type, a, y, first, last, batch):
    """y_i = Π_j f(a_{ob[i]+j}) per sample for neurons first … last−1 (one value run, or one
    neuron), float products in input order (§3.1). A run of single inputs (consecutive slots,
    one kind) is one flat loop: f(a) itself, which is 1.0·f(a) bit for bit (no activation
    makes a signalling NaN). Not inlined, and given the arrays it reads rather than the plan: a
    call inside an inlined helper that takes the plan tuple costs an NRT incref/decref of each
    of its arrays, more than the work of a neuron."""
    count = last - first
    if count <= 0:
        return
    k = first_ind_bias[first]
    if bias_number[first] == 1:
        rows = y.shape[1]
        _activation_row(activation_type[k], a[k:k + count].reshape(count * rows),
                        y[first:last].reshape(count * rows), (count - 1) * rows + batch)
        return
    for i in range(first, last):
        row = y[i]
        for d in range(batch):
            row[d] = f32(1.0)
        for k in range(first_ind_bias[i], first_ind_bias[i] + bias_number[i]):
            _times_activation(activation_type[k], a[k], row, batch)


@numba.njit(cache=True)
def _due_values(first_ind_bias, bias_number, activation_type, value_runs, first_ind_neighbour,
                neighbour_number, edge_target, child_run, a, y, y_due, a_due, batch):
    """The value phase of a sweep: y = F(a) for the neurons due, run by run (consecutive due
    neurons of a run at once); the target slots of their out-edges become due."""
    for r in range(value_runs.size - 1):
        i, end = value_runs[r], value_runs[r + 1]
        while i < end:
            if y_due[i] == 0:
                i += 1
                continue
            j = i + 1
            while j < end and y_due[j] != 0:
                j += 1
            _neuron_values(first_ind_bias, bias_number, activation_type, a, y, i, j, batch)
            for n in range(i, j):
                y_due[n] = 0
                if n > i and child_run[n - 1] > 1:
                    continue                # the same targets as neuron n − 1: marked already
                for e in range(first_ind_neighbour[n], first_ind_neighbour[n] + neighbour_number[n]):
                    a_due[edge_target[e]] = 1
            i = j


@numba.njit(cache=True, inline="always")
def _chain_sum(weight, source, first, count, values, acc, at, batch):
    """acc.flat[at + d] = fma chain over e = first … first+count−1 of weight[e]·values[source[e], d].

    Whole blocks of LANES samples in one register each (the buffers' rows are padded to a multiple
    of LANES); lanes past the batch hold values nobody reads."""
    rows = values.shape[1]
    for d0 in range(0, batch, LANES):
        chain = lanes.zero(LANES)
        for e in range(first, first + count):
            chain = lanes.fma_splat(lanes.at(weight, e),
                                    lanes.load(values, lanes.at(source, e) * rows + d0, LANES), chain)
        lanes.store(acc, at + d0, chain)


@numba.njit(cache=True, inline="always")
def _chain_sums(weight, source, f0, f1, f2, f3, count, values, out, row0, batch):
    """out[j, d] = _chain_sum of the chain starting at f_j, for four chains of `count` terms
    (four slots of a dense layer, four neurons with as many out-edges): each chain's terms in its
    own order, bit for bit _chain_sum, but four independent chains interleaved so that one
    chain's fma latency overlaps the others' (a single chain waits for every fma)."""
    rows, out_rows = values.shape[1], out.shape[1]
    base = row0 * out_rows
    for d0 in range(0, batch, LANES):
        c0, c1 = lanes.zero(LANES), lanes.zero(LANES)
        c2, c3 = lanes.zero(LANES), lanes.zero(LANES)
        for j in range(count):
            c0 = lanes.fma_splat(lanes.at(weight, f0 + j),
                                   lanes.load(values, lanes.at(source, f0 + j) * rows + d0, LANES), c0)
            c1 = lanes.fma_splat(lanes.at(weight, f1 + j),
                                   lanes.load(values, lanes.at(source, f1 + j) * rows + d0, LANES), c1)
            c2 = lanes.fma_splat(lanes.at(weight, f2 + j),
                                   lanes.load(values, lanes.at(source, f2 + j) * rows + d0, LANES), c2)
            c3 = lanes.fma_splat(lanes.at(weight, f3 + j),
                                   lanes.load(values, lanes.at(source, f3 + j) * rows + d0, LANES), c3)
        lanes.store(out, base + d0, c0)
        lanes.store(out, base + out_rows + d0, c1)
        lanes.store(out, base + 2 * out_rows + d0, c2)
        lanes.store(out, base + 3 * out_rows + d0, c3)


@numba.njit(cache=True, inline="always")
def _tile_sums(weight, source, starts, first, count, values, out, row0, batch):
    """out[j, d] = _chain_sum of row first+j, j < TILE, for TILE rows that share row first's list
    source[starts[first]:…+count] (a dense layer's slots: the same parents; its neurons: the
    same target slots): each list entry's row of values is loaded once for all TILE chains and
    each weight is broadcast once per block, so that a step of the tile is TILE·(vector fma) for
    one load; every chain keeps its own terms in its own order, bit for bit _chain_sum."""
    rows, out_rows = values.shape[1], out.shape[1]
    base = row0 * out_rows
    f = starts[first]
    f0, f1, f2 = starts[first], starts[first + 1], starts[first + 2]
    f3, f4, f5 = starts[first + 3], starts[first + 4], starts[first + 5]
    for d0 in range(0, batch, LANES):
        c0, c1, c2 = lanes.zero(LANES), lanes.zero(LANES), lanes.zero(LANES)
        c3, c4, c5 = lanes.zero(LANES), lanes.zero(LANES), lanes.zero(LANES)
        for j in range(count):
            v = lanes.load(values, lanes.at(source, f + j) * rows + d0, LANES)
            c0 = lanes.fma_splat(lanes.at(weight, f0 + j), v, c0)
            c1 = lanes.fma_splat(lanes.at(weight, f1 + j), v, c1)
            c2 = lanes.fma_splat(lanes.at(weight, f2 + j), v, c2)
            c3 = lanes.fma_splat(lanes.at(weight, f3 + j), v, c3)
            c4 = lanes.fma_splat(lanes.at(weight, f4 + j), v, c4)
            c5 = lanes.fma_splat(lanes.at(weight, f5 + j), v, c5)
        lanes.store(out, base + d0, c0)
        lanes.store(out, base + out_rows + d0, c1)
        lanes.store(out, base + 2 * out_rows + d0, c2)
        lanes.store(out, base + 3 * out_rows + d0, c3)
        lanes.store(out, base + 4 * out_rows + d0, c4)
        lanes.store(out, base + 5 * out_rows + d0, c5)


@numba.njit(cache=True, inline="always")
def _pair_sums(weight, source, starts, first, count, values, out, row0, batch):
    """_tile_sums of two rows sharing a list (what is left of a layer after its tiles)."""
    rows, out_rows = values.shape[1], out.shape[1]
    base = row0 * out_rows
    f0, f1 = starts[first], starts[first + 1]
    for d0 in range(0, batch, LANES):
        c0, c1 = lanes.zero(LANES), lanes.zero(LANES)
        for j in range(count):
            v = lanes.load(values, lanes.at(source, f0 + j) * rows + d0, LANES)
            c0 = lanes.fma_splat(lanes.at(weight, f0 + j), v, c0)
            c1 = lanes.fma_splat(lanes.at(weight, f1 + j), v, c1)
        lanes.store(out, base + d0, c0)
        lanes.store(out, base + out_rows + d0, c1)


@numba.njit(cache=True, inline="always")
def _group(due, count, first, end, check_due, limit):
    """How many of first, first+1, … (at most `limit`, before end) have first's count (and are
    due, if check_due)."""
    n = 1
    while n < limit and first + n < end and count[first + n] == count[first] and \
            (not check_due or due[first + n] != 0):
        n += 1
    return n


@numba.njit(cache=True, inline="always")
def _group_sums(weight, source, starts, count, run, due, first, end, values, out, row0, batch,
                check_due):
    """The chain sums of the group of rows at `first` (due ones, if check_due) into
    out[row0 … row0+n−1] (an index, not a view: a view costs two atomic reference counts);
    returns n. Rows sharing first's list (run: plan.parent_run / child_run) go
    as a tile of TILE or a pair; other rows four chains of one count at a time, or one."""
    shared = min(run[first], TILE)
    n = _group(due, count, first, end, check_due, shared) if shared > 1 else 1
    if n == TILE:
        _tile_sums(weight, source, starts, first, count[first], values, out, row0, batch)
        return n
    if n >= 2:
        _pair_sums(weight, source, starts, first, count[first], values, out, row0, batch)
        return 2
    n = _group(due, count, first, end, check_due, GROUP)
    if n == GROUP:
        _chain_sums(weight, source, starts[first], starts[first + 1], starts[first + 2],
                    starts[first + 3], count[first], values, out, row0, batch)
    else:
        for j in range(n):
            _chain_sum(weight, source, starts[first + j], count[first + j], values, out,
                       (row0 + j) * out.shape[1], batch)
    return n


# Parent sums (§3.1): _chain_sum(w_parent, graph_p, first_ind_parent[k], parent_number[k], y, …)
# is the fma chain over the parents of slot k in ascending edge index; child sums (§7, §8):
# _chain_sum(w, edge_target, first_ind_neighbour[i], neighbour_number[i], δ, …) over the out-edges
# of neuron i in file order.


# -- the fixed points (§3, §7) ---------------------------------------------------------------------
# A Jacobi sweep recomputes only what can change: a neuron's value is due when one of its slots
# changed in the last sweep, a slot's pre-activation when a parent's value changed in this sweep,
# a neuron's adjoint sum of its children when a child's increment changed in the last sweep
# (bit patterns compared). Everything else would get bit for bit the same value again (the same
# operations on the same operands), so the sweeps equal the original's whole-network sweeps in
# every bit; what settles (the layers upstream of a cycle forwards, downstream of it backwards)
# costs nothing after its depth. A solver that changes the iterate between sweeps must make
# everything due again (_all_due).
@numba.njit(cache=True, inline="always")
def _all_due(flags):
    for j in range(flags.size):
        flags[j] = f32(1.0)


@numba.njit(cache=True, inline="always")
def _lane_max(tops, batch, count):
    """The NaN-aware max-norm (§13.3) from per-sample maxima (−1 where every value was NaN)."""
    top = f32(-1.0)
    for d in range(batch):
        if tops[d] > top:
            top = tops[d]
    return _norm(top, count)


@numba.njit(cache=True, inline="always")
def _slot_blocks(sums, j, bk, a, k, tops, batch):
    """The forward sweep's update of slot k (one without data) on whole blocks of LANES samples:
    a[k] ← (0 + sums[j]) + b_k, tops ← max(tops, |a' − a|) as the scalar loop; returns (bits
    changed, a finite value seen, first sample left to the scalar loop)."""
    rows = a.shape[1]
    full = batch - batch % LANES
    changed, finite_values = 0, 0
    bias = lanes.splat(bk, LANES)
    for d0 in range(0, full, LANES):
        total, old = lanes.load(sums, j * rows + d0, LANES), lanes.load(a, k * rows + d0, LANES)
        top = lanes.load(tops, d0, LANES)      # every load before the stores
        value = lanes.add(lanes.add(lanes.zero(LANES), total), bias)
        changed |= lanes.differ(value, old)
        finite_values |= lanes.any_finite(value)
        lanes.store(a, k * rows + d0, value)
        lanes.store(tops, d0, lanes.larger(lanes.absolute(lanes.sub(value, old)), top))
    return changed, finite_values, full


@numba.njit(cache=True, inline="always")
def _increment_blocks(sums, i, h, k, t_old, t_new, delta, tops, batch):
    """The adjoint sweep's update of slot k on whole blocks of LANES samples, s = sums[i]: T' = s·H,
    δ = fma(s, H, δ), tops ← max(tops, |T'|) as the scalar loop; returns (bits changed, first
    sample left to the scalar loop)."""
    rows = h.shape[1]
    full = batch - batch % LANES
    changed = 0
    for d0 in range(0, full, LANES):
        at = k * rows + d0
        sv, hv = lanes.load(sums, i * rows + d0, LANES), lanes.load(h, at, LANES)
        old, sum_so_far = lanes.load(t_old, at, LANES), lanes.load(delta, at, LANES)
        top = lanes.load(tops, d0, LANES)      # every load before the stores
        inc = lanes.mul(sv, hv)
        changed |= lanes.differ(inc, old)
        lanes.store(t_new, at, inc)
        lanes.store(delta, at, lanes.fma_lanes(sv, hv, sum_so_far))
        lanes.store(tops, d0, lanes.larger(lanes.absolute(inc), top))
    return changed, full


@numba.njit(cache=True)
def _forward_sweep(plan, work, x, b, batch):
    """One sweep: y = F(a), then a ← (x̂ + W·y) + b in place (a' depends on y only); returns
    max|a' − a|. Slots not due keep a and count |a − a| (0, or NaN where a is not finite)."""
    a, y, tops, w_parent = work.a, work.y, work.tops, work.w_parent
    y_due, a_due, finite = work.y_due, work.a_due, work.finite
    sources, first_parent, parent_count = plan.graph_p, plan.first_ind_parent, plan.parent_number
    columns, owner = plan.data_column, plan.slot_owner
    _due_values(plan.first_ind_bias, plan.bias_number, plan.activation_type, plan.value_runs,
                plan.first_ind_neighbour, plan.neighbour_number, plan.edge_target, plan.child_run,
                a, y, y_due, a_due, batch)
    for d in range(batch):
        tops[d] = f32(-1.0)         # per sample: max |Δa| ignoring NaN, negative if all NaN
    settled_finite = False          # a slot not due with a finite value: a change of 0
    group_sums = work.group_sums
    first, slots = 0, plan.slot_num
    while first < slots:
        if a_due[first] == 0:
            settled_finite = settled_finite or finite[first] != 0
            first += 1
            continue
        n = _group_sums(w_parent, sources, first_parent, parent_count, plan.parent_run, a_due,
                        first, slots, y, group_sums, 0, batch, True)
        for k in range(first, first + n):
            a_due[k] = 0
            col = columns[k]
            bk = b[k]
            changed, finite_values, start = 0, 0, 0
            if col < 0:             # whole blocks of LANES samples in registers
                changed, finite_values, start = _slot_blocks(group_sums, k - first, bk, a, k,
                                                             tops, batch)
            for d in range(start, batch):
                value = f32(f32(_data(x, d, col) + group_sums[k - first, d]) + bk)
                old = a[k, d]
                change = abs(f32(value - old))
                tops[d] = change if change > tops[d] else tops[d]
                changed |= cudamath.float_bits(value) ^ cudamath.float_bits(old)
                finite_values |= np.int32(f32(value - value) == f32(0.0))
                a[k, d] = value
            finite[k] = f32(finite_values != 0)
            if changed != 0:
                y_due[owner[k]] = f32(1.0)
        first += n
    top = _lane_max(tops, batch, plan.slot_num * batch)
    if settled_finite and not top >= 0:
        top = f32(0.0)
    return top


@numba.njit(cache=True)
def _adjoint_sweep(plan, work, w, batch, sweep):
    """Sweep number `sweep`: T' = H ⊙ (Wᵀ T), δ += T'; returns max|T'|. Odd sweeps read work.t
    and write work.t_next, even ones the other way round; each neuron's sum over its children
    is kept in work.sums and recomputed when due."""
    t_old, t_new = (work.t, work.t_next) if sweep % 2 == 1 else (work.t_next, work.t)
    due, due_next = (work.s_due, work.s_due_next) if sweep % 2 == 1 else \
        (work.s_due_next, work.s_due)
    delta, h, sums, tops = work.delta, work.h, work.sums, work.tops
    first_bias, bias_count = plan.first_ind_bias, plan.bias_number
    targets, first_out, out_count = plan.edge_target, plan.first_ind_neighbour, plan.neighbour_number
    sources, first_parent, parent_count = plan.graph_p, plan.first_ind_parent, plan.parent_number
    for d in range(batch):
        tops[d] = f32(-1.0)
    limit = plan.neuron_limit
    i = 0
    while i < limit:                # the child sums of the neurons due, groups of equal counts
        if due[i] == 0:
            i += 1
            continue
        n = _group_sums(w, targets, first_out, out_count, plan.child_run, due, i, limit, t_old,
                        sums, i, batch, True)
        due[i:i + n] = 0
        i += n
    for i in range(limit, plan.neuron_num):
        if due[i] != 0:             # never reached by the original's launch grid (engine Q21)
            due[i] = 0
            sums[i, :batch] = 0.0
    parent_run, marked = plan.parent_run, -2     # the last slot whose parents are due
    for i in range(plan.neuron_num):
        for k in range(first_bias[i], first_bias[i] + bias_count[i]):
            changed, start = _increment_blocks(sums, i, h, k, t_old, t_new, delta, tops, batch)
            for d in range(start, batch):
                inc = f32(sums[i, d] * h[k, d])
                changed |= cudamath.float_bits(inc) ^ cudamath.float_bits(t_old[k, d])
                t_new[k, d] = inc
                delta[k, d] = fma(sums[i, d], h[k, d], delta[k, d])
                tops[d] = abs(inc) if abs(inc) > tops[d] else tops[d]
            if changed != 0:
                if k != marked + 1 or parent_run[marked] == 1:     # else: k − 1's parents
                    for p in range(first_parent[k], first_parent[k] + parent_count[k]):
                        due_next[sources[p]] = f32(1.0)
                marked = k
    return _lane_max(tops, batch, plan.slot_num * batch)


@numba.njit(cache=True)
def _adjoint_direct_sweep(plan, work, w, batch, sweep):
    """The adjoint as Anderson accelerates it: D' = S + H ⊙ (Wᵀ D) with S in work.delta, D in
    work.t / work.t_next by the sweep's parity (as _adjoint_sweep); returns max|D' − D|."""
    d_old, d_new = (work.t, work.t_next) if sweep % 2 == 1 else (work.t_next, work.t)
    seed, h, acc = work.delta, work.h, work.acc
    first_bias, bias_count = plan.first_ind_bias, plan.bias_number
    targets, first_out, out_count = plan.edge_target, plan.first_ind_neighbour, plan.neighbour_number
    top = f32(-1.0)
    for i in range(plan.neuron_num):
        if i < plan.neuron_limit:
            _chain_sum(w, targets, first_out[i], out_count[i], d_old, acc, 0, batch)
        else:                       # never reached by the original's launch grid (engine Q21)
            acc[:batch] = 0.0
        for k in range(first_bias[i], first_bias[i] + bias_count[i]):
            for d in range(batch):
                value = fma(acc[d], h[k, d], seed[k, d])
                change = abs(f32(value - d_old[k, d]))
                if change > top:
                    top = change
                d_new[k, d] = value
    return _norm(top, plan.slot_num * batch)


@numba.njit(cache=True, inline="always")
def _stop_rule(direction, settings):
    """(tol, maxiter) of the direction's stop rule."""
    if direction == FORWARD:
        return settings.tol_fixit, settings.maxiter_fix
    return settings.tol_backward, settings.maxiter_backward


@numba.njit(cache=True)
def _plain_sweeps(direction, plan, settings, work, x, w, b, batch, sweeps, residual, target):
    """Plain iteration continued from `sweeps` done (the last one's residual given): sweeps while
    fewer than `target` are done or the stop rule keeps iterating. Returns (sweeps, residual).
    From (0, BIG, 0) this is the original's loop; a minibatch split among threads
    (_split_gradient) continues each part to the sweep where the whole minibatch stops."""
    tol, maxiter = _stop_rule(direction, settings)
    while sweeps < target or _keep_iterating(residual, sweeps, tol, maxiter):
        sweeps += 1
        if direction == FORWARD:
            residual = _forward_sweep(plan, work, x, b, batch)
        else:
            residual = _adjoint_sweep(plan, work, w, batch, sweeps)
    return sweeps, residual


@numba.njit(cache=True, inline="always")
def _last_iterate(direction, work):
    """Where each direction leaves its fixed point."""
    return work.delta if direction == ADJOINT else work.a


@numba.njit(cache=True)
def _solve(direction, plan, settings, work, x, w, b, batch):
    """The fixed-point loop of both directions: sweeps until the stop rule (base.keep_iterating,
    the direction's tol and maxiter) ends it, batch-wide (engine Q3). Plain iteration, or with
    settings.solver ANDERSON each sweep's output mixed with the history before the next sweep
    reads it (never the output the loop ends with). Returns (iterations, last residual,
    max-norm of the last iterate)."""
    if settings.solver != ANDERSON:
        sweeps, residual = _plain_sweeps(direction, plan, settings, work, x, w, b, batch, 0,
                                         f32(BIG), 0)
        return sweeps, residual, _block_max_abs(_last_iterate(direction, work), batch)
    tol, maxiter = _stop_rule(direction, settings)
    history = _anderson_history(settings.anderson_m, plan.slot_num, batch)
    residual = f32(BIG)
    sweeps = 0
    while _keep_iterating(residual, sweeps, tol, maxiter):
        sweeps += 1
        mixing = sweeps > settings.anderson_start
        if direction == FORWARD:
            if mixing:              # the sweep updates A in place: keep its input
                _copy_rows(work.a, history.x_in, batch)
            residual = _forward_sweep(plan, work, x, b, batch)
            given, new = history.x_in, work.a
        else:
            residual = _adjoint_direct_sweep(plan, work, w, batch, sweeps)
            given, new = (work.t, work.t_next) if sweeps % 2 == 1 else (work.t_next, work.t)
        if mixing and _keep_iterating(residual, sweeps, tol, maxiter):
            _anderson_mix(history, given, new, sweeps - settings.anderson_start,
                          f64(settings.anderson_beta), batch)
            if direction == FORWARD:    # a slot the mixing changed and its neuron are due again
                for k in range(plan.slot_num):
                    if history.changed[k] != 0:
                        work.a_due[k] = f32(1.0)
                        work.y_due[plan.slot_owner[k]] = f32(1.0)
    if direction == ADJOINT:        # the result where the gradient reads it
        work.delta[:, :batch] = (work.t_next if sweeps % 2 == 1 else work.t)[:, :batch]
    return sweeps, residual, _block_max_abs(_last_iterate(direction, work), batch)


@numba.njit(cache=True)
def _anderson_history(m, height, batch):
    """Zeroed AndersonHistory for m differences of [height, batch] iterates (m = 0: empty)."""
    return AndersonHistory(np.zeros((height, batch), np.float32),
                           np.zeros((2, height, batch)), np.zeros((2, height, batch)),
                           np.zeros((m, height, batch)), np.zeros((m, height, batch)),
                           np.zeros((m, m, batch)), np.zeros(m, np.int64), np.zeros(batch),
                           np.zeros(batch), np.zeros(batch), np.zeros((m, batch)),
                           np.zeros((m, m)), np.zeros(m), np.zeros(batch, np.bool_),
                           np.zeros(height if m else 0, np.int64))


@numba.njit(cache=True, inline="always")
def _nan_max(p, q):
    """max(p, q), NaN if either is NaN (numpy.maximum)."""
    if p != p or q != q:
        return np.nan
    return p if p >= q else q


@numba.njit(cache=True, inline="always")
def _term(x, g, beta):
    """(1 − β) x + β g in float64 (g itself when β is 1)."""
    if beta == 1.0:
        return f64(g)
    return (1.0 - beta) * f64(x) + beta * f64(g)


@numba.njit(cache=True)
def _mixing_weights(a, z, n):
    """γ (into z) from one sample's (a + λI) γ = z, a [n, n] destroyed, Gaussian elimination in
    column order; False when the system fails. reference._mixing_weights is the same arithmetic
    vectorised over samples."""
    top = a[0, 0]
    for j in range(1, n):
        top = _nan_max(top, a[j, j])
    lam = ANDERSON_REG * top
    for j in range(n):
        a[j, j] = a[j, j] + lam
    for p in range(n):
        if not a[p, p] > 0:
            return False
        for r in range(p + 1, n):
            factor = a[r, p] / a[p, p]
            for c in range(p + 1, n):
                a[r, c] = a[r, c] - factor * a[p, c]
            z[r] = z[r] - factor * z[p]
    for p in range(n - 1, -1, -1):
        total = z[p]
        for c in range(p + 1, n):
            total = total - a[p, c] * z[c]
        z[p] = total / a[p, p]
    for j in range(n):
        if not np.isfinite(z[j]):
            return False
    return True


@numba.njit(cache=True)
def _anderson_mix(hist, given, new, k, beta, batch):
    """Anderson (type II, difference form) per sample after its k-th sweep, the arithmetic of
    reference.Anderson: f_k = g − x and t_k = (1 − β) x + β g of the sweep's input `given` and
    output `new`; the differences ΔF, ΔT with the previous sweep's go into the ring of the last m;
    the Gram matrix gets the new difference's row; then `new` is overwritten with
    t_k − Σ γ_j ΔT_j (or t_k where a sample's system fails), hist.changed[c] = 1 where that
    changed row c. The reference recomputes what is stored here; the values are the same float64
    numbers."""
    m, height = hist.d_f.shape[0], hist.d_f.shape[1]
    cur, prev = k % 2, (k + 1) % 2
    f, t = hist.f[cur], hist.t[cur]
    for c in range(height):
        for d in range(batch):
            x, g = given[c, d], new[c, d]
            f[c, d] = f64(g) - f64(x)
            t[c, d] = _term(x, g, beta)
    n = min(k - 1, m)
    changed = hist.changed
    if n == 0:
        for c in range(height):
            changed[c] = 0
            for d in range(batch):
                changed[c] |= _store_bits(new, c, d, f32(t[c, d]))
        return
    col = (k - 2) % m
    d_f, d_t, f_prev, t_prev = hist.d_f, hist.d_t, hist.f[prev], hist.t[prev]
    for c in range(height):
        for d in range(batch):
            d_f[col, c, d] = f[c, d] - f_prev[c, d]
            d_t[col, c, d] = t[c, d] - t_prev[c, d]
    order, total, right = hist.order, hist.total, hist.right
    for j in range(n):
        order[j] = (k - 2 - j) % m          # ring slot of ΔF_j (j = 0: the newest)
    for j in range(n):
        o = order[j]
        total[:batch] = 0.0
        right[:batch] = 0.0
        for c in range(height):
            for d in range(batch):
                total[d] = total[d] + d_f[col, c, d] * d_f[o, c, d]
                right[d] = right[d] + d_f[o, c, d] * f[c, d]
        for d in range(batch):
            hist.gram[col, o, d] = total[d]
            hist.gram[o, col, d] = total[d]
            hist.gamma[j, d] = right[d]
    a, z, solved = hist.a, hist.z, hist.solved
    for d in range(batch):
        for i in range(n):
            for j in range(n):
                a[i, j] = hist.gram[order[i], order[j], d]
            z[i] = hist.gamma[i, d]
        solved[d] = _mixing_weights(a, z, n)
        for j in range(n):
            hist.gamma[j, d] = z[j]
    row = hist.row
    for c in range(height):
        for d in range(batch):
            row[d] = t[c, d]
        for j in range(n):
            o = order[j]
            for d in range(batch):
                row[d] = row[d] - hist.gamma[j, d] * d_t[o, c, d]
        changed[c] = 0
        for d in range(batch):
            changed[c] |= _store_bits(new, c, d, f32(row[d]) if solved[d] else f32(t[c, d]))


@numba.njit(cache=True, inline="always")
def _store_bits(values, c, d, value):
    """values[c, d] = value; nonzero when that changed its bits (a mixed slot is due again)."""
    change = cudamath.float_bits(value) ^ cudamath.float_bits(values[c, d])
    values[c, d] = value
    return np.int64(change != 0)


@numba.njit(cache=True, inline="always")
def _copy_rows(source, target, batch):
    """target[:, :batch] = source[:, :batch] (row by row: the buffers' rows differ in length)."""
    for c in range(target.shape[0]):
        for d in range(batch):
            target[c, d] = source[c, d]


@numba.njit(cache=True)
def _block_max_abs(values, batch):
    """The NaN-aware max-norm of values[:, :batch] (a solve's last iterate)."""
    top = f32(-1.0)
    for k in range(values.shape[0]):
        for d in range(batch):
            if abs(values[k, d]) > top:
                top = abs(values[k, d])
    return _norm(top, values.shape[0] * batch)


@numba.njit(cache=True)
def _forward_implicit(plan, settings, work, x, w, b):
    """Fixed point a ← (x̂ + W·F(a)) + b from a = x̂ (engine Q2); Y lags A (engine Q1).

    Returns (iterations, last max|Δa|, max|A|, final A buffer)."""
    batch = x.shape[0]
    _forward_start(plan, work, x)
    sweeps, residual, size = _solve(FORWARD, plan, settings, work, x, w, b, batch)
    return sweeps, residual, size, work.a


@numba.njit(cache=True, inline="always")
def _start_from_inputs(plan, work, x):
    """Both fixed points' start (engine Q2): a = x̂ on every slot, y = 0; returns a."""
    batch = x.shape[0]
    a, columns = work.a, plan.data_column
    for k in range(plan.slot_num):
        col = columns[k]
        for d in range(batch):
            a[k, d] = _data(x, d, col)
    work.y[:plan.neuron_num, :batch] = 0.0
    return a


@numba.njit(cache=True)
def _forward_start(plan, work, x):
    """The faithful fixed point's start: a = x̂, y = 0, every neuron the launch grid reaches and
    every slot due."""
    _start_from_inputs(plan, work, x)
    work.y_due[:] = 0.0
    work.y_due[:plan.neuron_limit] = 1.0
    _all_due(work.a_due)


# Row updates of the level path on the blocks of LANES samples that cover the batch (the lanes
# past it are padding nobody reads); each lane is the scalar operation.
@numba.njit(cache=True, inline="always")
def _fill_row(values, k, value, batch):
    """values[k, d] = value."""
    rows, v = values.shape[1], lanes.splat(value, LANES)
    for d0 in range(0, batch, LANES):
        lanes.store(values, k * rows + d0, v)


@numba.njit(cache=True, inline="always")
def _copy_row(source, target, k, batch):
    """target[k, d] = source[k, d]."""
    rows = source.shape[1]
    for d0 in range(0, batch, LANES):
        lanes.store(target, k * rows + d0, lanes.load(source, k * rows + d0, LANES))


@numba.njit(cache=True, inline="always")
def _add_row(values, k, sums, j, batch):
    """values[k, d] = values[k, d] + sums[j, d]."""
    rows = values.shape[1]
    for d0 in range(0, batch, LANES):
        at = k * rows + d0
        lanes.store(values, at, lanes.add(lanes.load(values, at, LANES),
                                          lanes.load(sums, j * rows + d0, LANES)))


@numba.njit(cache=True, inline="always")
def _fma_row(sums, i, h, k, delta, batch):
    """delta[k, d] = fma(sums[i, d], h[k, d], delta[k, d])."""
    rows = h.shape[1]
    for d0 in range(0, batch, LANES):
        at = k * rows + d0
        lanes.store(delta, at, lanes.fma_lanes(lanes.load(sums, i * rows + d0, LANES),
                                               lanes.load(h, at, LANES), lanes.load(delta, at, LANES)))


@numba.njit(cache=True)
def _forward_levels(plan, work, x, b):
    """PERT sweep: bias first ((x̂+b)+Σ, engine Q12), neurons in level order; Y consistent with A
    (§4.2). A segment of level_order (one level, one value run: a layer) at a time."""
    batch = x.shape[0]
    a, y, group_sums, w_parent = work.a, work.y, work.group_sums, work.w_parent
    kinds, first_bias, bias_count = plan.activation_type, plan.first_ind_bias, plan.bias_number
    sources, first_parent, parent_count = plan.graph_p, plan.first_ind_parent, plan.parent_number
    columns, dist, neuron_limit = plan.data_column, plan.dist, plan.neuron_limit
    for k in range(plan.slot_num):
        col = columns[k]
        bk = b[k]
        if col < 0:
            _fill_row(a, k, f32(f32(0.0) + bk), batch)
        else:
            for d in range(batch):
                a[k, d] = f32(_data(x, d, col) + bk)
    y[:plan.neuron_num, :batch] = 0.0
    segments, order = plan.level_segments, plan.level_order
    for q in range(segments.size - 1):
        first = order[segments[q]]
        last = first + segments[q + 1] - segments[q]
        if dist[first] >= 1:        # its slots are at level ≥ 1: they receive the parent sum
            k, end = first_bias[first], first_bias[last - 1] + bias_count[last - 1]
            while k < end:
                n = _group_sums(w_parent, sources, first_parent, parent_count, plan.parent_run,
                                parent_count, k, end, y, group_sums, 0, batch, False)
                for j in range(n):
                    _add_row(a, k + j, group_sums, j, batch)
                k += n
        if first < neuron_limit:
            _neuron_values(first_bias, bias_count, kinds, a, y, first, last, batch)
    return plan.depth, f32(0.0), f32(np.nan), a


# -- the block solver (--solver blocks, blocks.py) -------------------------------------------------
# The strongly connected components in topological order, as segments (a cyclic block, or a
# layer of acyclic blocks) of pieces (consecutive neurons of one value run): an acyclic segment
# is evaluated once from its final parents, a cyclic block is iterated on its own with the
# faithful sweep's arithmetic and stop rule (tol_fixit, maxiter_fix) while everything upstream
# is final; the adjoint δ = S + H ⊙ (Wᵀ δ) likewise in reverse order. The solves report the
# sweeps of the largest cyclic block (1 when there is none) and the largest last residual of any
# cyclic block.
@numba.njit(cache=True)
def _segment_values(plan, a, y, segment, batch):
    """y = F(a) for the segment's neurons the launch grid reaches (engine Q21), a piece (one
    value run) at a time."""
    kinds, first_bias, bias_count = plan.activation_type, plan.first_ind_bias, plan.bias_number
    starts, piece_first, piece_last = plan.segment_starts, plan.piece_first, plan.piece_last
    for p in range(starts[segment], starts[segment + 1]):
        if piece_first[p] < plan.neuron_limit:
            _neuron_values(first_bias, bias_count, kinds, a, y, piece_first[p], piece_last[p],
                           batch)


@numba.njit(cache=True)
def _segment_slots(plan, work, x, b, segment, batch):
    """a ← (x̂ + W·y) + b on the slots of the segment's pieces (consecutive slots each, their
    parent sums four at a time); returns max|a' − a| ignoring NaN (negative if all NaN)."""
    a, y, w_parent, group_sums = work.a, work.y, work.w_parent, work.group_sums
    first_bias, bias_count = plan.first_ind_bias, plan.bias_number
    sources, first_parent, parent_count = plan.graph_p, plan.first_ind_parent, plan.parent_number
    starts, piece_first, piece_last = plan.segment_starts, plan.piece_first, plan.piece_last
    columns = plan.data_column
    top = f32(-1.0)
    for p in range(starts[segment], starts[segment + 1]):
        k = first_bias[piece_first[p]]
        end = first_bias[piece_last[p] - 1] + bias_count[piece_last[p] - 1]
        while k < end:
            n = _group_sums(w_parent, sources, first_parent, parent_count, plan.parent_run,
                            parent_count, k, end, y, group_sums, 0, batch, False)
            for j in range(n):
                col = columns[k + j]
                bk = b[k + j]
                for d in range(batch):
                    value = f32(f32(_data(x, d, col) + group_sums[j, d]) + bk)
                    change = abs(f32(value - a[k + j, d]))
                    if change > top:
                        top = change
                    a[k + j, d] = value
            k += n
    return top


@numba.njit(cache=True, inline="always")
def _segment_size(plan, segment):
    """Slots of the segment."""
    size = 0
    for p in range(plan.segment_starts[segment], plan.segment_starts[segment + 1]):
        first, last = plan.piece_first[p], plan.piece_last[p] - 1
        size += plan.first_ind_bias[last] + plan.bias_number[last] - plan.first_ind_bias[first]
    return size


@numba.njit(cache=True, inline="always")
def _worse(residual, worst):
    """The larger residual; NaN (a block that blew up) wins."""
    return residual if residual != residual or residual > worst else worst


@numba.njit(cache=True)
def _forward_blocks(plan, settings, work, x, w, b):
    """The fixed point segment by segment from a = x̂ (engine Q2), Y lagging A inside a cyclic
    block as in the faithful sweeps. Returns (iterations, last residual, max|A|, A buffer)."""
    batch = x.shape[0]
    a = _start_from_inputs(plan, work, x)
    iterations, worst = 1 if plan.largest_block < 0 else 0, f32(0.0)
    for segment in range(plan.segment_cyclic.size):
        if plan.segment_cyclic[segment] == 0:
            _segment_slots(plan, work, x, b, segment, batch)
            _segment_values(plan, a, work.y, segment, batch)
            continue
        count = _segment_size(plan, segment) * batch
        residual, sweeps = f32(BIG), 0
        while _keep_iterating(residual, sweeps, settings.tol_fixit, settings.maxiter_fix):
            sweeps += 1
            _segment_values(plan, a, work.y, segment, batch)
            residual = _norm(_segment_slots(plan, work, x, b, segment, batch), count)
        if segment == plan.largest_block:
            iterations = sweeps
        worst = _worse(residual, worst)
    return iterations, worst, _block_max_abs(a, batch), a


@numba.njit(cache=True)
def _segment_adjoint(plan, work, w, segment, batch):
    """δ ← S + H ⊙ (Wᵀ δ) on the segment's slots (S kept in work.t), the child sums of all its
    neurons first (four at a time; a Jacobi step); returns max|δ' − δ| ignoring NaN."""
    delta, h, seed, sums = work.delta, work.h, work.t, work.sums
    first_bias, bias_count, limit = plan.first_ind_bias, plan.bias_number, plan.neuron_limit
    targets, first_out, out_count = plan.edge_target, plan.first_ind_neighbour, plan.neighbour_number
    starts, piece_first, piece_last = plan.segment_starts, plan.piece_first, plan.piece_last
    for p in range(starts[segment], starts[segment + 1]):
        i = piece_first[p]
        if i >= limit:              # never reached by the original's launch grid (engine Q21)
            sums[i, :batch] = 0.0
            continue
        while i < piece_last[p]:
            i += _group_sums(w, targets, first_out, out_count, plan.child_run, out_count, i,
                             piece_last[p], delta, sums, i, batch, False)
    top = f32(-1.0)
    for p in range(starts[segment], starts[segment + 1]):
        for i in range(piece_first[p], piece_last[p]):
            for k in range(first_bias[i], first_bias[i] + bias_count[i]):
                for d in range(batch):
                    value = fma(sums[i, d], h[k, d], seed[k, d])
                    change = abs(f32(value - delta[k, d]))
                    if change > top:
                        top = change
                    delta[k, d] = value
    return top


@numba.njit(cache=True)
def _backward_blocks(plan, settings, work, w, batch):
    """δ segment by segment in reverse topological order from δ = S. Returns (iterations, last
    residual, max|δ|) as _forward_blocks."""
    iterations, worst = 1 if plan.largest_block < 0 else 0, f32(0.0)
    for segment in range(plan.segment_cyclic.size - 1, -1, -1):
        if plan.segment_cyclic[segment] == 0:
            _segment_adjoint(plan, work, w, segment, batch)
            continue
        count = _segment_size(plan, segment) * batch
        residual, sweeps = f32(BIG), 0
        while _keep_iterating(residual, sweeps, settings.tol_backward,
                              settings.maxiter_backward):
            sweeps += 1
            residual = _norm(_segment_adjoint(plan, work, w, segment, batch), count)
        if segment == plan.largest_block:
            iterations = sweeps
        worst = _worse(residual, worst)
    return iterations, worst, _block_max_abs(work.delta, batch)


@numba.njit(cache=True)
def _forward(plan, settings, work, x, w, b):
    """(iterations, last residual, max|A|, A buffer) of the forward pass of the plan's path."""
    if plan.level_path:
        return _forward_levels(plan, work, x, b)
    if plan.block_solver:
        return _forward_blocks(plan, settings, work, x, w, b)
    return _forward_implicit(plan, settings, work, x, w, b)


@numba.njit(cache=True)
def _derivatives(first_ind_bias, bias_number, activation_type, a, h, f, first, last, batch):
    """H of the slots of neurons first … last−1 (one value run, or one neuron): f'(a) of a run's
    slots in one flat loop; otherwise per neuron, H[k] = f'(a_k)·Π_{l≠j} f(a_l) over the other
    inputs in input order (§5). Not inlined, for the reason _neuron_values gives."""
    count = last - first
    if count <= 0:
        return
    k = first_ind_bias[first]
    if bias_number[first] == 1:
        rows = h.shape[1]
        _derivative_row(activation_type[k], a[k:k + count].reshape(count * rows),
                        h[k:k + count].reshape(count * rows), (count - 1) * rows + batch)
        return
    for i in range(first, last):
        start, inputs = first_ind_bias[i], bias_number[i]
        if inputs > 1:
            for k in range(start, start + inputs):
                _activation_row(activation_type[k], a[k], f[k], batch)
        for k in range(start, start + inputs):
            _derivative_row(activation_type[k], a[k], h[k], batch)
            for other in range(start, start + inputs):
                if other != k:
                    for d in range(batch):
                        h[k, d] = f32(h[k, d] * f[other, d])


@numba.njit(cache=True)
def _local_derivatives(plan, a, h, f, batch):
    """H of every slot from the final A (§5): value run by value run, then one by one the
    neurons the launch grid of the value kernels does not reach (their H is still computed)."""
    runs = plan.value_runs
    for r in range(runs.size - 1):
        _derivatives(plan.first_ind_bias, plan.bias_number, plan.activation_type, a, h, f,
                     runs[r], runs[r + 1], batch)
    for i in range(plan.neuron_limit, plan.neuron_num):
        _derivatives(plan.first_ind_bias, plan.bias_number, plan.activation_type, a, h, f, i,
                     i + 1, batch)


@numba.njit(cache=True)
def _output_transform(kind, y, out0, d, prob):
    """prob[r] = prediction r of sample d: softmax, sigmoid or identity of the outputs (§6, §12)."""
    outputs = prob.size
    if kind == MULTICLASS_CE:
        softmax_row(y[out0:out0 + outputs, d], prob)
    elif kind == BCE_MULTILABEL:
        for r in range(outputs):
            prob[r] = host_sigmoid(y[out0 + r, d])
    else:
        for r in range(outputs):
            prob[r] = y[out0 + r, d]


@numba.njit(cache=True, inline="always")
def _seed_value(kind, p, t, h):
    """Adjoint seed of one output slot (§6 table): p prediction, t target, h = H of the slot."""
    diff = f32(p - t)
    if kind == MAE:
        return h if diff >= 0 else -h
    if kind == MULTILABEL_CE:
        if p > 0.0 and p < 1.0:
            return f32(f64(f32(diff * h)) / (f64(p) * (1.0 - f64(p))))
        return f32(0.0)
    if kind == BCE_MULTILABEL:
        return diff
    return f32(diff * h)        # MSE (engine Q5) and multiclass


@numba.njit(cache=True)
def _seed(plan, settings, work, x, batch):
    """δ = T = S: zero except the output neurons' slots (§6)."""
    slots, owner = plan.output_slots, plan.slot_output
    delta, h, y, prob = work.delta, work.h, work.y, work.prob
    first_out = slots[0] if slots.size else plan.slot_num
    out0 = plan.neuron_num - plan.output_num
    for k in range(first_out):
        _fill_row(delta, k, f32(0.0), batch)
    for d in range(batch):
        _output_transform(settings.loss, y, out0, d, prob)
        for s in range(slots.size):
            k, r = slots[s], owner[s]
            delta[k, d] = _seed_value(settings.loss, prob[r], x[d, r], h[k, d])
    if not plan.level_path:         # the fixed points' first increment (the levels need none)
        for k in range(plan.slot_num):
            _copy_row(delta, work.t, k, batch)


@numba.njit(cache=True)
def _backward_levels(plan, work, w, batch):
    """Levels depth−1 … 0 (segments of level_order in reverse); IB = depth − 1 (§8, engine Q13).
    A segment's child sums all come first (its δ rows are no neuron's targets in the segment)."""
    delta, h, sums = work.delta, work.h, work.sums
    segments, order = plan.level_segments, plan.level_order
    dist, depth, neuron_limit = plan.dist, plan.depth, plan.neuron_limit
    first_bias, bias_count = plan.first_ind_bias, plan.bias_number
    targets, first_out, out_count = plan.edge_target, plan.first_ind_neighbour, plan.neighbour_number
    for q in range(segments.size - 2, -1, -1):
        first = order[segments[q]]
        last = first + segments[q + 1] - segments[q]
        if dist[first] >= depth or first >= neuron_limit:
            continue
        i = first
        while i < last:
            i += _group_sums(w, targets, first_out, out_count, plan.child_run, out_count, i, last,
                             delta, sums, i, batch, False)
        for i in range(first, last):
            for k in range(first_bias[i], first_bias[i] + bias_count[i]):
                _fma_row(sums, i, h, k, delta, batch)
    return plan.depth - 1, f32(0.0), f32(np.nan)


@numba.njit(cache=True)
def _backward(plan, settings, work, x, w, b, batch):
    """(iterations, last residual, max|δ|) of the adjoint of the plan's path; δ in work.delta."""
    if plan.level_path:
        return _backward_levels(plan, work, w, batch)
    if plan.block_solver:
        return _backward_blocks(plan, settings, work, w, batch)
    _adjoint_start(work)
    return _solve(ADJOINT, plan, settings, work, x, w, b, batch)


@numba.njit(cache=True, inline="always")
def _adjoint_start(work):
    """Every neuron's child sum due for the first adjoint sweep."""
    _all_due(work.s_due)
    work.s_due_next[:] = 0.0


@numba.njit(cache=True, inline="always")
def _edge_block(gw, rows, y, i, e0, lag, batch, width):
    """gw[e0 … e0+width−1] = fma chains over the samples of δ[d, e+lag]·y[i, d] (§9 step 1): the
    out-edges e of neuron i in one register, their slots e+lag consecutive."""
    slots, samples = rows.shape[1], y.shape[1]
    chain = lanes.zero(width)
    for d in range(batch):
        chain = lanes.fma_splat(lanes.at(y, i * samples + d),
                                lanes.load(rows, d * slots + e0 + lag, width), chain)
    lanes.store(gw, e0, chain)


@numba.njit(cache=True, inline="always")
def _edge_tile(gw, rows, y, i, first_out, j0, slot, batch, width):
    """_edge_block of TILE neurons i … i+TILE−1 whose out-edges hit the same consecutive slots:
    edges first_out[i+q] + j0 … (+width−1) of each, slots slot …; one load of δ's row per sample
    for all TILE chains."""
    slots, samples = rows.shape[1], y.shape[1]
    c0, c1, c2 = lanes.zero(width), lanes.zero(width), lanes.zero(width)
    c3, c4, c5 = lanes.zero(width), lanes.zero(width), lanes.zero(width)
    for d in range(batch):
        v = lanes.load(rows, d * slots + slot, width)
        c0 = lanes.fma_splat(lanes.at(y, i * samples + d), v, c0)
        c1 = lanes.fma_splat(lanes.at(y, (i + 1) * samples + d), v, c1)
        c2 = lanes.fma_splat(lanes.at(y, (i + 2) * samples + d), v, c2)
        c3 = lanes.fma_splat(lanes.at(y, (i + 3) * samples + d), v, c3)
        c4 = lanes.fma_splat(lanes.at(y, (i + 4) * samples + d), v, c4)
        c5 = lanes.fma_splat(lanes.at(y, (i + 5) * samples + d), v, c5)
    lanes.store(gw, first_out[i] + j0, c0)
    lanes.store(gw, first_out[i + 1] + j0, c1)
    lanes.store(gw, first_out[i + 2] + j0, c2)
    lanes.store(gw, first_out[i + 3] + j0, c3)
    lanes.store(gw, first_out[i + 4] + j0, c4)
    lanes.store(gw, first_out[i + 5] + j0, c5)


@numba.njit(cache=True, inline="always")
def _edge_pair(gw, rows, y, i, first_out, j0, slot, batch, width):
    """_edge_tile of two neurons."""
    slots, samples = rows.shape[1], y.shape[1]
    c0, c1 = lanes.zero(width), lanes.zero(width)
    for d in range(batch):
        v = lanes.load(rows, d * slots + slot, width)
        c0 = lanes.fma_splat(lanes.at(y, i * samples + d), v, c0)
        c1 = lanes.fma_splat(lanes.at(y, (i + 1) * samples + d), v, c1)
    lanes.store(gw, first_out[i] + j0, c0)
    lanes.store(gw, first_out[i + 1] + j0, c1)


@numba.njit(cache=True, inline="always")
def _edge_rows(gw, rows, y, i, n, first_out, count, slot, batch):
    """The dense out-edges of neurons i … i+n−1 (n: TILE, 2 or 1; the same `count` consecutive
    target slots from `slot`): blocks of LANES edges, then one of HALF; returns how many edges
    of each are left for the scalar loop."""
    j = 0
    while count - j >= LANES or count - j >= HALF:
        width = LANES if count - j >= LANES else HALF
        if n == TILE:
            if width == LANES:
                _edge_tile(gw, rows, y, i, first_out, j, slot + j, batch, LANES)
            else:
                _edge_tile(gw, rows, y, i, first_out, j, slot + j, batch, HALF)
        elif n == 2:
            if width == LANES:
                _edge_pair(gw, rows, y, i, first_out, j, slot + j, batch, LANES)
            else:
                _edge_pair(gw, rows, y, i, first_out, j, slot + j, batch, HALF)
        elif width == LANES:
            _edge_block(gw, rows, y, i, first_out[i] + j, slot - first_out[i], batch, LANES)
        else:
            _edge_block(gw, rows, y, i, first_out[i] + j, slot - first_out[i], batch, HALF)
        j += width
    return j


@numba.njit(cache=True, inline="always")
def _transpose(delta, rows, batch):
    """rows[d, k] = delta[k, d] for d < batch: 8×8 blocks in registers (the blocks of samples
    may run into the padding), the slots past the last whole block one by one."""
    slots, samples = rows.shape[1], delta.shape[1]
    whole = slots - slots % 8
    for k0 in range(0, whole, 8):
        for d0 in range(0, batch, 8):
            lanes.transpose8(delta, k0 * samples + d0, samples, rows, d0 * slots + k0, slots)
    for k in range(whole, slots):
        for d in range(batch):
            rows[d, k] = delta[k, d]


@numba.njit(cache=True, inline="always")
def _bias_sums(gb, rows, batch):
    """gb[k] = Σ_d δ[d, k] in sample order (float adds), LANES slots per register; rows is δ
    sample-major."""
    slots = gb.size
    k0 = 0
    while k0 + LANES <= slots:
        chain = lanes.zero(LANES)
        for d in range(batch):
            chain = lanes.add(chain, lanes.load(rows, d * rows.shape[1] + k0, LANES))
        lanes.store(gb, k0, chain)
        k0 += LANES
    for k in range(k0, slots):
        g = f32(0.0)
        for d in range(batch):
            g = f32(g + rows[d, k])
        gb[k] = g


@numba.njit(cache=True, inline="always")
def _clip(g, theta):
    """The original's two-step clip: above θ → θ, then below −θ → −θ (NaN passes)."""
    if g > theta:
        g = theta
    if g < -theta:
        g = -theta
    return g


@numba.njit(cache=True)
def _assemble(plan, settings, work, w, batch):
    """G_w, G_b: sample-ordered sums, / B, + 2·alpha·w on every edge, clipping (§9 steps 1-6)."""
    gw, gb, delta, y = work.gw, work.gb, work.delta, work.y
    rows = work.delta_rows          # δ sample-major, so that an edge run reads contiguously
    _transpose(delta, rows, batch)
    targets, first_out, out_count = plan.edge_target, plan.first_ind_neighbour, plan.neighbour_number
    dense_run, child_run = plan.dense_run, plan.child_run
    gw[:] = 0.0
    limit = min(plan.neuron_num, plan.source_limit)
    i = 0
    while i < limit:
        n, done = 1, 0
        if dense_run[i]:                # consecutive edges hit consecutive slots: vector blocks,
            shared = min(child_run[i], limit - i)   # a tile of neurons with the same slots at once
            n = TILE if shared >= TILE else (2 if shared >= 2 else 1)
            done = _edge_rows(gw, rows, y, i, n, first_out, out_count[i], targets[first_out[i]],
                              batch)
        for r in range(i, i + n):
            for e in range(first_out[r] + done, first_out[r] + out_count[r]):
                for d in range(batch):
                    gw[e] = fma(rows[d, targets[e]], y[r, d], gw[e])
        i += n
    _bias_sums(gb, rows, batch)
    size = f32(batch)
    twice_alpha = 2.0 * f64(settings.alpha)
    theta = settings.clipping_threshold
    for e in range(gw.size):        # loops without branches: they vectorise
        gw[e] = f32(f64(f32(gw[e] / size)) + twice_alpha * f64(w[e]))
    for k in range(gb.size):
        gb[k] = f32(gb[k] / size)
    if settings.clipping == 1:
        for e in range(gw.size):
            gw[e] = _clip(gw[e], theta)
        for k in range(gb.size):
            gb[k] = _clip(gb[k], theta)


@numba.njit(cache=True)
def _gradient(plan, settings, work, x, w, b):
    """engine.md §9 steps 1-6 at (w, b); gradients left in work.gw / work.gb.

    Returns (f32(loss sum / B), iterations, last residual and last iterate's max-norm forward,
    the same three backward)."""
    batch = x.shape[0]
    w_parent, parent_edge = work.w_parent, plan.parent_edge   # weight_trans: the forward pass
    for p in range(w_parent.size):                               # pulls along in-edges
        w_parent[p] = w[parent_edge[p]]
    it_f, err_f, norm_f, a = _forward(plan, settings, work, x, w, b)
    _local_derivatives(plan, a, work.h, work.f, batch)
    _seed(plan, settings, work, x, batch)
    it_b, err_b, norm_b = _backward(plan, settings, work, x, w, b, batch)
    _assemble(plan, settings, work, w, batch)
    out0 = plan.neuron_num - plan.output_num
    loss = loss_sum(settings.loss, work.y[out0:plan.neuron_num, :batch].T, x[:, :plan.output_num])
    return f32(loss / f32(batch)), it_f, err_f, norm_f, it_b, err_b, norm_b


@numba.njit(cache=True)
def _max_abs(values):
    """max |v| ignoring NaN; NaN when every entry is NaN; 0 when empty (§13.3)."""
    top = f32(-1.0)
    for v in values:
        if abs(v) > top:
            top = abs(v)
    return _norm(top, values.size)


@numba.njit(cache=True)
def _share_sums(grad, members, starts):
    """For each group (members[starts[g]:starts[g+1]]): sequential float32 sum written to all."""
    for g in range(starts.size - 1):
        s = f32(0.0)
        for q in range(starts[g], starts[g + 1]):
            s = f32(s + grad[members[q]])
        for q in range(starts[g], starts[g + 1]):
            grad[members[q]] = s


@numba.njit(cache=True, error_model="numpy")
def _update(settings, grad, param, mask, v, m, u, lr, beta1, beta1t, beta2t):
    """§11 on one parameter vector: every state entry updated, parameter writes masked (engine Q15).
    A division by zero (adam_eps 0 with a zero gradient, adam_beta1 1) gives inf / NaN as in C,
    not a ZeroDivisionError (numba's default error model)."""
    beta2 = settings.adam_beta2
    for e in range(grad.size):
        g = grad[e]
        if settings.optimizer == 1:
            step = f32(lr * g)
            v[e] = fma(beta1, v[e], -step)
            if settings.nesterov == 1:
                new = f32(param[e] + fma(beta1, v[e], -step))
            else:
                new = f32(param[e] + v[e])
        elif settings.optimizer == 2:
            m[e] = f32(fma64(1.0 - f64(beta1), f64(g), f64(f32(beta1 * m[e]))))
            v[e] = f32(fma64(f64(g), (1.0 - f64(beta2)) * f64(g), f64(f32(beta2 * v[e]))))
            m_hat = f32(f64(m[e]) / (1.0 - f64(beta1t)))
            v_hat = f32(f64(v[e]) / (1.0 - f64(beta2t)))
            new = f32(param[e] - f32(f32(lr * m_hat) / f32(f32(math.sqrt(abs(v_hat))) + settings.adam_eps)))
        elif settings.optimizer == 3:
            m[e] = f32(fma64(1.0 - f64(beta1), f64(g), f64(f32(beta1 * m[e]))))
            scaled = f32(beta2 * u[e])
            a_g = abs(g)
            u[e] = a_g if scaled != scaled else (scaled if a_g != a_g else max(scaled, a_g))
            denom = f64(f32(u[e] + settings.adam_eps))
            step = f64(lr) / (1.0 - f64(beta1t)) * f64(m[e]) / denom
            new = f32(f64(param[e]) - step)
        else:
            return
        if mask[e] == 1:
            param[e] = new


@numba.njit(cache=True)
def _lookahead(settings, param, v, mask, out):
    """Nesterov look-ahead with the BASE beta1 for trainable entries (§10 step 2, engine Q14)."""
    for e in range(param.size):
        out[e] = fma(settings.adam_beta1, v[e], param[e]) if mask[e] == 1 else param[e]


@numba.njit(cache=True)
def _train_step(plan, settings, work, x, lr, beta1, w, b, v_w, v_b, m_w, m_b, u_w, u_b, betas,
                packed_plan, buf, rows, part_buf, part_rows, packed_settings, workers):
    """§10 steps 2-5 for one minibatch (its gradient split among the `workers` work buffers of
    part_buf where that pays, _parts). Returns _gradient's seven values, then maw, mab."""
    w_at, b_at = w, b
    if settings.optimizer == 1 and settings.nesterov == 1:
        _lookahead(settings, w, v_w, plan.graph_logic, work.w_ahead)
        _lookahead(settings, b, v_b, plan.bias_logic, work.b_ahead)
        w_at, b_at = work.w_ahead, work.b_ahead
    parts = _parts(plan, settings, x.shape[0], workers)
    if parts > 1:
        loss, it_f, err_f, norm_f, it_b, err_b, norm_b = _split_gradient(
            plan, settings, work, x, w_at, b_at, parts, packed_plan, buf, rows, part_buf,
            part_rows, packed_settings)
    else:
        loss, it_f, err_f, norm_f, it_b, err_b, norm_b = _gradient(plan, settings, work, x, w_at,
                                                                    b_at)
    maw, mab = _max_abs(work.gw), _max_abs(work.gb)
    _share_sums(work.gw, plan.weight_group_members, plan.weight_group_starts)
    _share_sums(work.gb, plan.bias_group_members, plan.bias_group_starts)
    if settings.optimizer == 2 or settings.optimizer == 3:
        betas[0] = f32(betas[0] * beta1)
        betas[1] = f32(betas[1] * settings.adam_beta2)
    _update(settings, work.gw, w, plan.graph_logic, v_w, m_w, u_w, lr, beta1, betas[0], betas[1])
    _update(settings, work.gb, b, plan.bias_logic, v_b, m_b, u_b, lr, beta1, betas[0], betas[1])
    return loss, it_f, err_f, norm_f, it_b, err_b, norm_b, maw, mab


# -- one minibatch split among threads ------------------------------------------------------------
# Its rows are independent in every stage but three, so each part of consecutive rows (whole
# blocks of LANES samples) runs in its own work buffer on its own thread (_part_stage) and the
# three are joined exactly:
# - a fixed point's stop rule is batch-wide (engine Q3), the NaN-aware max-norm over all rows: it
#   stops after sweep K iff every part's own rule would stop there (each part's residual ≤ tol or
#   NaN, or K = maxiter). So each part sweeps until its own rule stops it, then the parts behind
#   the furthest one sweep on to it and on until their own rule stops them, and so on until all
#   stop at the same sweep K (_settle; K is never passed, each part's iterate is the
#   single-thread one after K sweeps, bit for bit). The reported residual and norm are the
#   parts' NaN-aware maximum (_norm_of_parts). A part's due flags see its own rows only: a slot
#   not due gets the same bits again, so that changes nothing either.
# - the gradient sums over samples (§9) and the loss run in sample order: the parts' y and δ are
#   copied side by side into the minibatch's own work buffer (_gather) and the whole minibatch
#   is assembled there.
# - Anderson mixing and the block solver keep the minibatch on one thread (_parts).
# The parts' buffers are as long as a part (part_rows), not as the minibatch: a part in a buffer
# of the minibatch's row length strides over rows twice as long (measured 15 % slower).
# The smallest minibatches split among threads, fixed point and level path: below these the
# parts' extra work (per-slot costs over fewer samples, the copies, the wake-ups, a part swept on
# alone) eats the second thread's gain. Measured on two idle cores (benchmarks/bench_steps.py),
# 2 threads / 1 thread: v1 (5;32;8) 0.92-1.13 at 128 rows, 0.79-0.85 at 256; v1 (7;64;16)
# 0.68-0.86 at 128, 0.60-0.63 at 256. On one thread (the parts in turn, CPU time per sample against
# the unsplit step): v1 (5;32;8) +16 % at 128, +6 % at 256; v0 (5;32;8) +33 % at 256, -2 % at
# 1024, v0 (7;64;16) +22 % at 256, +14 % at 1024, and a level-path step of 256 rows lasts only
# 0.1-0.4 ms.
SPLIT_ROWS, SPLIT_ROWS_LEVELS = 256, 1024
START, MORE_FORWARD, START_ADJOINT, MORE_ADJOINT, GATHER = 0, 1, 2, 3, 4     # _part_stage


@numba.njit(cache=True)
def _parts(plan, settings, batch, workers):
    """How many parts a minibatch of `batch` rows is split into: one per worker, whole blocks of
    LANES rows each, from SPLIT_ROWS rows on (the level path: SPLIT_ROWS_LEVELS), on the level
    path and the faithful fixed point."""
    if workers < 2 or batch < (SPLIT_ROWS_LEVELS if plan.level_path else SPLIT_ROWS) or \
            plan.block_solver or (not plan.level_path and settings.solver == ANDERSON):
        return 1
    return min(workers, -(-batch // LANES))


@numba.njit(cache=True)
def _part_bounds(batch, parts):
    """First rows of the parts and the end: the LANES blocks dealt as evenly as they go, the
    first parts the larger."""
    blocks = -(-batch // LANES)
    bounds = np.zeros(parts + 1, np.int64)
    for p in range(parts):
        size = (blocks // parts + (1 if p < blocks % parts else 0)) * LANES
        bounds[p + 1] = min(bounds[p] + size, batch)
    return bounds


@numba.njit(cache=True)
def _part_stage(stage, x, w, b, bounds, target, sweeps, residual, norm, part, packed_plan, buf,
                rows, part_buf, part_rows, packed_settings):
    """One stage of part `part` (rows bounds[part] … bounds[part+1]−1 of x, in work buffer
    `part` of part_buf, rows part_rows long); sweeps, residual, norm [direction, part] hold each
    part's solves; buf is the minibatch's work buffer."""
    plan, settings = unpack_plan(packed_plan), unpack_settings(packed_settings)
    length = work_length(part_rows, plan.neuron_num, plan.slot_num, plan.edge_num,
                         plan.output_num)
    work = work_views(part_buf[part * length:(part + 1) * length], part_rows, plan.neuron_num,
                      plan.slot_num, plan.edge_num, plan.output_num)
    x = x[bounds[part]:bounds[part + 1]]
    batch = x.shape[0]
    direction = ADJOINT if stage == START_ADJOINT or stage == MORE_ADJOINT else FORWARD
    if stage == START:
        w_parent, parent_edge = work.w_parent, plan.parent_edge
        for p in range(w_parent.size):
            w_parent[p] = w[parent_edge[p]]
        if plan.level_path:
            sweeps[0, part], residual[0, part], norm[0, part], _ = _forward_levels(plan, work, x,
                                                                                   b)
            _local_derivatives(plan, work.a, work.h, work.f, batch)
            _seed(plan, settings, work, x, batch)
            sweeps[1, part], residual[1, part], norm[1, part] = _backward_levels(plan, work, w,
                                                                                 batch)
            return
        _forward_start(plan, work, x)
    elif stage == START_ADJOINT:
        norm[FORWARD, part] = _block_max_abs(work.a, batch)
        _local_derivatives(plan, work.a, work.h, work.f, batch)
        _seed(plan, settings, work, x, batch)
        _adjoint_start(work)
    elif stage == GATHER:
        if not plan.level_path:
            norm[ADJOINT, part] = _block_max_abs(work.delta, batch)
        _gather(plan, work_views(buf, rows, plan.neuron_num, plan.slot_num, plan.edge_num,
                                 plan.output_num), work, bounds[part], batch)
        return
    sweeps[direction, part], residual[direction, part] = _plain_sweeps(
        direction, plan, settings, work, x, w, b, batch, sweeps[direction, part],
        residual[direction, part], target)


@numba.njit(cache=True)
def _gather(plan, whole, work, start, batch):
    """y and δ of a part's rows into columns start … start+batch−1 of the minibatch's buffers."""
    for i in range(plan.neuron_num):
        for d in range(batch):
            whole.y[i, start + d] = work.y[i, d]
    for k in range(plan.slot_num):
        for d in range(batch):
            whole.delta[k, start + d] = work.delta[k, d]


@numba.njit(cache=True, parallel=True)
def _parallel_stage(stage, x, w, b, bounds, target, sweeps, residual, norm, packed_plan, buf,
                    rows, part_buf, part_rows, packed_settings):
    """_part_stage of every part that has work in it, each on a thread of numba's pool."""
    more = stage == MORE_FORWARD or stage == MORE_ADJOINT
    direction = ADJOINT if stage == MORE_ADJOINT else FORWARD
    for part in numba.prange(bounds.size - 1):
        if not more or sweeps[direction, part] < target:
            _part_stage(stage, x, w, b, bounds, target, sweeps, residual, norm, part,
                        packed_plan, buf, rows, part_buf, part_rows, packed_settings)


@numba.njit(cache=True)
def _settle(direction, x, w, b, bounds, sweeps, residual, norm, packed_plan, buf, rows, part_buf,
            part_rows, packed_settings):
    """After each part's own rule stopped it: the parts behind sweep on to the furthest one and
    until their own rule stops them again, until all stopped at the same sweep. Where one part
    alone is behind it runs on this thread (no wake-up of another)."""
    stage = MORE_FORWARD if direction == FORWARD else MORE_ADJOINT
    while True:
        target, behind, last = sweeps[direction].max(), 0, 0
        for part in range(bounds.size - 1):
            if sweeps[direction, part] < target:
                behind, last = behind + 1, part
        if behind == 0:
            return
        if behind == 1:
            _part_stage(stage, x, w, b, bounds, target, sweeps, residual, norm, last,
                        packed_plan, buf, rows, part_buf, part_rows, packed_settings)
        else:
            _parallel_stage(stage, x, w, b, bounds, target, sweeps, residual, norm, packed_plan,
                            buf, rows, part_buf, part_rows, packed_settings)


@numba.njit(cache=True)
def _norm_of_parts(values):
    """The NaN-aware max-norm of the whole from the parts' (each ≥ 0 or NaN)."""
    top = values[0]
    for v in values[1:]:
        if top != top or v > top:
            top = v
    return top


@numba.njit(cache=True)
def _split_gradient(plan, settings, work, x, w, b, parts, packed_plan, buf, rows, part_buf,
                    part_rows, packed_settings):
    """_gradient of minibatch x split into `parts` parts (work buffers 0 … parts−1 of part_buf;
    work: the views of buf), bit for bit _gradient's results (see above)."""
    batch = x.shape[0]
    bounds = _part_bounds(batch, parts)
    sweeps = np.zeros((2, parts), np.int64)
    residual = np.full((2, parts), f32(BIG))
    norm = np.zeros((2, parts), np.float32)
    _parallel_stage(START, x, w, b, bounds, 0, sweeps, residual, norm, packed_plan, buf, rows,
                    part_buf, part_rows, packed_settings)
    if not plan.level_path:
        _settle(FORWARD, x, w, b, bounds, sweeps, residual, norm, packed_plan, buf, rows,
                part_buf, part_rows, packed_settings)
        _parallel_stage(START_ADJOINT, x, w, b, bounds, 0, sweeps, residual, norm, packed_plan,
                        buf, rows, part_buf, part_rows, packed_settings)
        _settle(ADJOINT, x, w, b, bounds, sweeps, residual, norm, packed_plan, buf, rows,
                part_buf, part_rows, packed_settings)
    _parallel_stage(GATHER, x, w, b, bounds, 0, sweeps, residual, norm, packed_plan, buf, rows,
                    part_buf, part_rows, packed_settings)
    _assemble(plan, settings, work, w, batch)
    out0 = plan.neuron_num - plan.output_num
    loss = loss_sum(settings.loss, work.y[out0:plan.neuron_num, :batch].T, x[:, :plan.output_num])
    return (f32(loss / f32(batch)), sweeps[0, 0], _norm_of_parts(residual[0]),
            _norm_of_parts(norm[0]), sweeps[1, 0], _norm_of_parts(residual[1]),
            _norm_of_parts(norm[1]))


@numba.njit(cache=True)
def _predict(plan, settings, work, x, batch_size, w, b, out, iterations, residual, norm, worker,
             workers):
    """Forward pass on the chunks worker, worker + workers, … of batch_size rows, output
    transform of §6 (§12); each chunk's iterations, last residual and last iterate's max-norm.
    A chunk's result depends on nothing a previous chunk left in the buffers, so who computes it
    changes no bit."""
    w_parent, parent_edge = work.w_parent, plan.parent_edge
    for p in range(w_parent.size):
        w_parent[p] = w[parent_edge[p]]
    out0 = plan.neuron_num - plan.output_num
    for c in range(worker, -(-x.shape[0] // batch_size), workers):
        start = c * batch_size
        chunk = x[start:start + batch_size]
        if plan.level_path:         # not through _forward: a call level less per chunk (≈ 10 %)
            sweeps, last, size, _ = _forward_levels(plan, work, chunk, b)
        elif plan.block_solver:
            sweeps, last, size, _ = _forward_blocks(plan, settings, work, chunk, w, b)
        else:
            sweeps, last, size, _ = _forward_implicit(plan, settings, work, chunk, w, b)
        iterations[c], residual[c], norm[c] = sweeps, last, size
        for d in range(chunk.shape[0]):
            _output_transform(settings.loss, work.y, out0, d, work.prob)
            out[start + d, :] = work.prob


# -- work buffers: one float32 array, named views rebuilt inside each call ------------------------
@numba.njit(cache=True)
def work_length(rows, k, slots, edges, outputs):
    """float32 entries of the packed work buffer for minibatches of up to `rows` samples."""
    return rows * (7 * slots + 2 * k + 2 + TILE) + outputs + 4 * slots + 3 * edges + 3 * k


@numba.njit(cache=True)
def _work_length_of(packed_plan, rows):
    """work_length of the packed plan's network."""
    plan = unpack_plan(packed_plan)
    return work_length(rows, plan.neuron_num, plan.slot_num, plan.edge_num, plan.output_num)


@numba.njit(cache=True, inline="always")
def _block(buf, start, height, rows):
    return buf[start:start + height * rows].reshape((height, rows)), start + height * rows


@numba.njit(cache=True)
def work_views(buf, rows, k, slots, edges, outputs):
    """Work: named views into the packed buffer (slot-major 2-D blocks [height, rows])."""
    at = 0
    a, at = _block(buf, at, slots, rows)
    y, at = _block(buf, at, k, rows)
    h, at = _block(buf, at, slots, rows)
    f, at = _block(buf, at, slots, rows)
    delta, at = _block(buf, at, slots, rows)
    t, at = _block(buf, at, slots, rows)
    t_next, at = _block(buf, at, slots, rows)
    delta_rows, at = _block(buf, at, rows, slots)
    sums, at = _block(buf, at, k, rows)
    acc, at = buf[at:at + rows], at + rows
    group_sums, at = _block(buf, at, TILE, rows)
    tops, at = buf[at:at + rows], at + rows
    prob, at = buf[at:at + outputs], at + outputs
    w_ahead, at = buf[at:at + edges], at + edges
    b_ahead, at = buf[at:at + slots], at + slots
    w_parent, at = buf[at:at + edges], at + edges
    gw, at = buf[at:at + edges], at + edges
    gb, at = buf[at:at + slots], at + slots
    y_due, at = buf[at:at + k], at + k
    a_due, at = buf[at:at + slots], at + slots
    finite, at = buf[at:at + slots], at + slots
    s_due, at = buf[at:at + k], at + k
    s_due_next = buf[at:at + k]
    return Work(a, y, h, f, delta, t, t_next, acc, prob, w_ahead, b_ahead, w_parent, gw, gb,
                delta_rows, sums, tops, y_due, a_due, finite, s_due, s_due_next, group_sums)


@numba.njit(cache=True, inline="always")
def _unpack(packed_plan, buf, rows, packed_settings):
    if packed_plan[0] != LAYOUT:
        raise ValueError(STALE)
    plan = unpack_plan(packed_plan)
    work = work_views(buf, rows, plan.neuron_num, plan.slot_num, plan.edge_num, plan.output_num)
    return plan, unpack_settings(packed_settings), work


# -- entry points: the plan, the work buffer and the settings each arrive as one array -------------
@numba.njit(cache=True)
def train_steps(x, first, end, batch, lr, beta1, w, b, v_w, v_b, m_w, m_b, u_w, u_b, betas, out,
                packed_plan, buf, rows, part_buf, part_rows, packed_settings):
    """Minibatches first … end−1 of x (rows q·batch … (q+1)·batch − 1, the last one shorter),
    one _train_step each; out[:, q − first] = loss, iterations, residual and last iterate's
    max-norm forward and backward, maw, mab of each. buf: the minibatch's work buffer (rows
    long); part_buf: as many work buffers of part_rows as a minibatch may be split into (none:
    one thread)."""
    plan, settings, work = _unpack(packed_plan, buf, rows, packed_settings)
    workers = part_buf.size // _work_length_of(packed_plan, part_rows)
    for q in range(end - first):
        start = (first + q) * batch
        loss, it_f, err_f, norm_f, it_b, err_b, norm_b, maw, mab = _train_step(
            plan, settings, work, x[start:min(start + batch, x.shape[0])], lr[q], beta1[q], w, b,
            v_w, v_b, m_w, m_b, u_w, u_b, betas, packed_plan, buf, rows, part_buf, part_rows,
            packed_settings, workers)
        out[0, q], out[1, q], out[2, q], out[3, q] = loss, it_f, err_f, norm_f
        out[4, q], out[5, q], out[6, q], out[7, q], out[8, q] = it_b, err_b, norm_b, maw, mab


@numba.njit(cache=True)
def gradient(x, w, b, packed_plan, buf, rows, packed_settings):
    plan, settings, work = _unpack(packed_plan, buf, rows, packed_settings)
    return _gradient(plan, settings, work, x, w, b)


@numba.njit(cache=True)
def _predict_worker(x, batch_size, w, b, out, iterations, residual, norm, packed_plan, buf, rows,
                    packed_settings, worker, workers):
    plan, settings, work = _unpack(packed_plan, buf, rows, packed_settings)
    _predict(plan, settings, work, x, batch_size, w, b, out, iterations, residual, norm, worker,
             workers)


@numba.njit(cache=True, parallel=True)
def predict(x, batch_size, w, b, out, iterations, residual, norm, packed_plan, buf, rows,
            packed_settings):
    """The chunks dealt round-robin to as many workers as buf holds work buffers, one thread
    each (numba's pool: thread_num); every chunk is its own fixed point (§12). The layout is
    checked here: an exception inside the parallel loop would not reach the caller intact."""
    if packed_plan[0] != LAYOUT:
        raise ValueError(STALE)
    length = _work_length_of(packed_plan, rows)
    workers = buf.size // length
    for worker in numba.prange(workers):
        _predict_worker(x, batch_size, w, b, out, iterations, residual, norm, packed_plan,
                        buf[worker * length:(worker + 1) * length], rows, packed_settings, worker,
                        workers)
