"""numba kernels of the CPU engine: one compiled call per training minibatch, one per prediction.

Buffers are slot-major: row = slot (or neuron), column = sample of the minibatch. Every per-(slot,
sample) quantity is computed from the same operands in the same order as the original (fma chains
over parents / out-edges in index order, products over a neuron's inputs in input order), so the
layout does not change a single bit; it only makes the innermost loop run over the samples, whose
chains are independent, so that it vectorises. The gradient sums over samples (§9) are the only
chains along that axis; they run edge by edge in sample order.

fma(a, b, c) is llvm.fma, one rounding (engine.md §13.6); the fma chains over parents and out-edges
run on blocks of LANES samples held in one vector register (lanes.py). No fastmath anywhere.
"""
import math
from collections import namedtuple

import numba
import numpy as np

from implicit_nn.engine import lanes
from implicit_nn.engine.activations import IDENTITY, RELU, activation, activation_derivative, host_sigmoid
from implicit_nn.engine.base import _share_sums
from implicit_nn.engine.lanes import LANES, fma, fma64
from implicit_nn.engine.losses import (BCE_MULTILABEL, MAE, MULTICLASS_CE, MULTILABEL_CE, loss_sum,
                                       softmax_row)

f32 = np.float32
f64 = np.float64
HALF = LANES // 2   # a dense layer's out-edges: blocks of LANES, then one of HALF
BIG = 1e20          # the original's "inf": initial error of the fixed-point loops

# Static network arrays (int64). sizes = K, I, O, evaluated neurons, gradient sources, dist_max, ff.
# run[i] = 1 when neuron i's out-edges target consecutive ascending slots (dense layers).
Net = namedtuple("Net", "sizes nb ob nn on tgt act pn fip psrc pedge data_col order dist "
                        "wlogic blogic w_members w_starts b_members b_starts run")
# Settings: tol, itmax, loss id, optimizer, nesterov, base beta1, beta2, eps, alpha, clipping, theta.
Cfg = namedtuple("Cfg", "tol itmax loss optimizer nesterov beta1_base beta2 eps alpha clipping theta")
# Work buffers, preallocated per engine (slot-major 2-D: [slots or neurons, max minibatch]).
Work = namedtuple("Work", "a0 a1 y h f dlt t0 t1 acc prob wl bl wt gw gb dlt_rows")


@numba.njit(cache=True, inline="always")
def _data(x, d, col):
    """x̂: the data value of a slot (first slot of an input neuron), 0 elsewhere."""
    return x[d, col] if col >= 0 else f32(0.0)


# The per-neuron / per-slot helpers below are inlined by numba itself: as separate functions each
# call passes the Net tuple of arrays (≈ 7 µs of the v0 training step, 20 µs of v1).
@numba.njit(cache=True, inline="always")
def _neuron_values(net, a, y, i, batch):
    """y_i = Π_j f(a_{ob[i]+j}) per sample, float products in input order (§3.1)."""
    for d in range(batch):
        y[i, d] = f32(1.0)
    for k in range(net.ob[i], net.ob[i] + net.nb[i]):
        kind = net.act[k]
        if kind == RELU:            # a constant kind: the sample loop vectorises
            for d in range(batch):
                y[i, d] = f32(y[i, d] * activation(RELU, a[k, d]))
        elif kind == IDENTITY:
            for d in range(batch):
                y[i, d] = f32(y[i, d] * activation(IDENTITY, a[k, d]))
        else:
            for d in range(batch):
                y[i, d] = f32(y[i, d] * activation(kind, a[k, d]))


@numba.njit(cache=True, inline="always")
def _chain_sum(weight, source, first, count, values, acc, batch):
    """acc[d] = fma chain over e = first … first+count−1 of weight[e]·values[source[e], d].

    Whole blocks of LANES samples in one register each (the buffers' rows are padded to a multiple
    of LANES); lanes past the batch hold values nobody reads."""
    rows = values.shape[1]
    for d0 in range(0, batch, LANES):
        chain = lanes.zero(LANES)
        for e in range(first, first + count):
            chain = lanes.fma_splat(weight[e], lanes.load(values, source[e] * rows + d0, LANES),
                                    chain)
        lanes.store(acc, d0, chain)


@numba.njit(cache=True, inline="always")
def _parent_sum(net, wt, y, k, acc, batch):
    """acc[d] = fma chain over the parents of slot k (ascending edge index) of w_e·y_src (§3.1)."""
    _chain_sum(wt, net.psrc, net.fip[k], net.pn[k], y, acc, batch)


@numba.njit(cache=True, inline="always")
def _child_sum(net, w, delta, i, acc, batch):
    """acc[d] = fma chain over the out-edges of neuron i (file order) of w_e·δ_tgt (§7, §8)."""
    _chain_sum(w, net.tgt, net.on[i], net.nn[i], delta, acc, batch)


@numba.njit(cache=True)
def _forward_implicit(net, cfg, work, x, b):
    """Fixed point a ← (x̂ + W·F(a)) + b from a = x̂ (Q2), batch-wide stop (Q3); Y lags A (Q1).

    Returns (iterations, last max|Δa|, final A buffer)."""
    k_num, batch = net.sizes[0], x.shape[0]
    slots, n_eval = net.act.size, net.sizes[3]
    a, a_new, y, acc = work.a0, work.a1, work.y, work.acc
    for k in range(slots):
        col = net.data_col[k]
        for d in range(batch):
            a[k, d] = _data(x, d, col)
    y[:k_num, :batch] = 0.0
    err = f32(BIG)
    it = 0
    while err > cfg.tol and it < cfg.itmax:
        it += 1
        for i in range(n_eval):
            _neuron_values(net, a, y, i, batch)
        top = f32(-1.0)             # max |Δa| ignoring NaN; stays negative if all are NaN
        for k in range(slots):
            _parent_sum(net, work.wt, y, k, acc, batch)
            col = net.data_col[k]
            bk = b[k]
            for d in range(batch):
                value = f32(f32(_data(x, d, col) + acc[d]) + bk)
                change = abs(f32(value - a[k, d]))
                if change > top:
                    top = change
                a_new[k, d] = value
        err = top if top >= 0 else (f32(np.nan) if slots * batch > 0 else f32(0.0))
        a, a_new = a_new, a
    return it, err, a


@numba.njit(cache=True)
def _forward_levels(net, work, x, b):
    """PERT sweep: bias first ((x̂+b)+Σ, Q12), neurons in level order; Y consistent with A (§4.2)."""
    k_num, batch = net.sizes[0], x.shape[0]
    n_eval = net.sizes[3]
    a, y, acc = work.a0, work.y, work.acc
    for k in range(net.act.size):
        col = net.data_col[k]
        bk = b[k]
        for d in range(batch):
            a[k, d] = f32(_data(x, d, col) + bk)
    y[:k_num, :batch] = 0.0
    for i in net.order:
        if net.dist[i] >= 1:        # its slots are at level ≥ 1: they receive the parent sum
            for k in range(net.ob[i], net.ob[i] + net.nb[i]):
                _parent_sum(net, work.wt, y, k, acc, batch)
                for d in range(batch):
                    a[k, d] = f32(a[k, d] + acc[d])
        if i < n_eval:
            _neuron_values(net, a, y, i, batch)
    return net.sizes[5], f32(0.0), a


@numba.njit(cache=True)
def _local_derivatives(net, a, h, f, batch):
    """H[k] = f'(a_k)·Π_{l≠j} f(a_l) over the neuron's other inputs, in input order (§5)."""
    for i in range(net.sizes[0]):
        first, count = net.ob[i], net.nb[i]
        if count > 1:
            for k in range(first, first + count):
                kind = net.act[k]
                for d in range(batch):
                    f[k, d] = activation(kind, a[k, d])
        for k in range(first, first + count):
            kind = net.act[k]
            if kind == RELU:        # a constant kind: the sample loop vectorises
                for d in range(batch):
                    h[k, d] = activation_derivative(RELU, a[k, d])
            elif kind == IDENTITY:
                for d in range(batch):
                    h[k, d] = activation_derivative(IDENTITY, a[k, d])
            else:
                for d in range(batch):
                    h[k, d] = activation_derivative(kind, a[k, d])
            for other in range(first, first + count):
                if other != k:
                    for d in range(batch):
                        h[k, d] = f32(h[k, d] * f[other, d])


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
    return f32(diff * h)        # MSE (Q5) and multiclass


@numba.njit(cache=True)
def _seed(net, cfg, work, x, h, batch):
    """δ = T = S: zero except the output neurons' slots (§6)."""
    k_num, outputs = net.sizes[0], net.sizes[2]
    out0 = k_num - outputs
    slots = net.act.size
    first_out = net.ob[out0] if outputs > 0 else slots
    work.dlt[:first_out, :batch] = 0.0
    prob = work.prob
    for d in range(batch):
        _output_transform(cfg.loss, work.y, out0, d, prob)
        for r in range(outputs):
            i = out0 + r
            for k in range(net.ob[i], net.ob[i] + net.nb[i]):
                work.dlt[k, d] = _seed_value(cfg.loss, prob[r], x[d, r], h[k, d])
    work.t0[:, :batch] = work.dlt[:, :batch]


@numba.njit(cache=True)
def _backward_implicit(net, cfg, work, w, h, batch):
    """T ← H ⊙ (Wᵀ T), δ += T until max|T| ≤ tol (§7, Q4). Returns (iterations, last max|T|)."""
    k_num, n_eval = net.sizes[0], net.sizes[3]
    dlt, t_old, t_new, acc = work.dlt, work.t0, work.t1, work.acc
    slots = net.act.size
    err = f32(BIG)
    it = 0
    while it < cfg.itmax and err > cfg.tol:
        it += 1
        top = f32(-1.0)
        for i in range(k_num):
            if i < n_eval:
                _child_sum(net, w, t_old, i, acc, batch)
            else:                   # never reached by the original's launch grid (Q21)
                acc[:batch] = 0.0
            for k in range(net.ob[i], net.ob[i] + net.nb[i]):
                for d in range(batch):
                    inc = f32(acc[d] * h[k, d])
                    t_new[k, d] = inc
                    dlt[k, d] = fma(acc[d], h[k, d], dlt[k, d])
                    if abs(inc) > top:
                        top = abs(inc)
        err = top if top >= 0 else (f32(np.nan) if slots * batch > 0 else f32(0.0))
        t_old, t_new = t_new, t_old
    return it, err


@numba.njit(cache=True)
def _backward_levels(net, work, w, h, batch):
    """Levels dist_max−1 … 0 (neurons in reverse level order); IB = dist_max − 1 (§8, Q13)."""
    dist_max, n_eval = net.sizes[5], net.sizes[3]
    dlt, acc = work.dlt, work.acc
    for q in range(net.order.size - 1, -1, -1):
        i = net.order[q]
        if net.dist[i] >= dist_max or i >= n_eval:
            continue
        _child_sum(net, w, dlt, i, acc, batch)
        for k in range(net.ob[i], net.ob[i] + net.nb[i]):
            for d in range(batch):
                dlt[k, d] = fma(acc[d], h[k, d], dlt[k, d])
    return dist_max - 1, f32(0.0)


@numba.njit(cache=True, inline="always")
def _edge_block(gw, rows, y, i, e0, lag, batch, width):
    """gw[e0 … e0+width−1] = fma chains over the samples of δ[d, e+lag]·y[i, d] (§9 step 1): the
    out-edges e of neuron i in one register, their slots e+lag consecutive."""
    slots = rows.shape[1]
    chain = lanes.zero(width)
    for d in range(batch):
        chain = lanes.fma_splat(y[i, d], lanes.load(rows, d * slots + e0 + lag, width), chain)
    lanes.store(gw, e0, chain)


@numba.njit(cache=True, inline="always")
def _clip(g, theta):
    """The original's two-step clip: above θ → θ, then below −θ → −θ (NaN passes)."""
    if g > theta:
        g = theta
    if g < -theta:
        g = -theta
    return g


@numba.njit(cache=True)
def _assemble(net, cfg, work, w, batch):
    """G_w, G_b: sample-ordered sums, / B, + 2·alpha·w on every edge, clipping (§9 steps 1-6)."""
    gw, gb, dlt, y = work.gw, work.gb, work.dlt, work.y
    rows = work.dlt_rows            # δ sample-major, so that an edge run reads contiguously
    for k in range(gb.size):
        for d in range(batch):
            rows[d, k] = dlt[k, d]
    gw[:] = 0.0
    for i in range(min(net.sizes[0], net.sizes[4])):
        first, count = net.on[i], net.nn[i]
        rest = first
        if net.run[i]:                  # consecutive edges hit consecutive slots: vector blocks
            lag = net.tgt[first] - first    # slot of edge e = e + lag
            while first + count - rest >= LANES:
                _edge_block(gw, rows, y, i, rest, lag, batch, LANES)
                rest += LANES
            if first + count - rest >= HALF:
                _edge_block(gw, rows, y, i, rest, lag, batch, HALF)
                rest += HALF
        for e in range(rest, first + count):
            for d in range(batch):
                gw[e] = fma(rows[d, net.tgt[e]], y[i, d], gw[e])
    for k in range(gb.size):
        g = f32(0.0)
        for d in range(batch):
            g = f32(g + dlt[k, d])
        gb[k] = g
    size = f32(batch)
    twice_alpha = 2.0 * f64(cfg.alpha)
    theta = cfg.theta
    for e in range(gw.size):
        g = f32(f64(f32(gw[e] / size)) + twice_alpha * f64(w[e]))
        if cfg.clipping == 1:
            g = _clip(g, theta)
        gw[e] = g
    for k in range(gb.size):
        g = f32(gb[k] / size)
        if cfg.clipping == 1:
            g = _clip(g, theta)
        gb[k] = g


@numba.njit(cache=True)
def _gradient(net, cfg, work, x, w, b):
    """engine.md §9 steps 1-6 at (w, b); gradients left in work.gw / work.gb.

    Returns (f32(loss sum / B), iterations and last residual forward, the same backward)."""
    batch = x.shape[0]
    for p in range(work.wt.size):   # weight_trans: the forward pass pulls along incoming edges
        work.wt[p] = w[net.pedge[p]]
    if net.sizes[6]:
        it_f, err_f, a = _forward_levels(net, work, x, b)
    else:
        it_f, err_f, a = _forward_implicit(net, cfg, work, x, b)
    _local_derivatives(net, a, work.h, work.f, batch)
    _seed(net, cfg, work, x, work.h, batch)
    if net.sizes[6]:
        it_b, err_b = _backward_levels(net, work, w, work.h, batch)
    else:
        it_b, err_b = _backward_implicit(net, cfg, work, w, work.h, batch)
    _assemble(net, cfg, work, w, batch)
    k_num, outputs = net.sizes[0], net.sizes[2]
    loss = loss_sum(cfg.loss, work.y[k_num - outputs:k_num, :batch].T, x[:, :outputs])
    return f32(loss / f32(batch)), it_f, err_f, it_b, err_b


@numba.njit(cache=True)
def _max_abs(values):
    """max |v| ignoring NaN; NaN when every entry is NaN; 0 when empty (§13.3)."""
    top = f32(-1.0)
    for v in values:
        if abs(v) > top:
            top = abs(v)
    if top >= 0:
        return top
    return f32(np.nan) if values.size else f32(0.0)


@numba.njit(cache=True, error_model="numpy")
def _update(cfg, grad, param, mask, v, m, u, lr, beta1, beta1t, beta2t):
    """§11 on one parameter vector: every state entry updated, parameter writes masked (Q15).
    A division by zero (adam_eps 0 with a zero gradient, adam_beta1 1) gives inf / NaN as in C,
    not a ZeroDivisionError (numba's default error model)."""
    beta2 = cfg.beta2
    for e in range(grad.size):
        g = grad[e]
        if cfg.optimizer == 1:
            step = f32(lr * g)
            v[e] = fma(beta1, v[e], -step)
            if cfg.nesterov == 1:
                new = f32(param[e] + fma(beta1, v[e], -step))
            else:
                new = f32(param[e] + v[e])
        elif cfg.optimizer == 2:
            m[e] = f32(fma64(1.0 - f64(beta1), f64(g), f64(f32(beta1 * m[e]))))
            v[e] = f32(fma64(f64(g), (1.0 - f64(beta2)) * f64(g), f64(f32(beta2 * v[e]))))
            m_hat = f32(f64(m[e]) / (1.0 - f64(beta1t)))
            v_hat = f32(f64(v[e]) / (1.0 - f64(beta2t)))
            new = f32(param[e] - f32(f32(lr * m_hat) / f32(f32(math.sqrt(abs(v_hat))) + cfg.eps)))
        elif cfg.optimizer == 3:
            m[e] = f32(fma64(1.0 - f64(beta1), f64(g), f64(f32(beta1 * m[e]))))
            scaled = f32(beta2 * u[e])
            a_g = abs(g)
            u[e] = a_g if scaled != scaled else (scaled if a_g != a_g else max(scaled, a_g))
            denom = f64(f32(u[e] + cfg.eps))
            step = f64(lr) / (1.0 - f64(beta1t)) * f64(m[e]) / denom
            new = f32(f64(param[e]) - step)
        else:
            return
        if mask[e] == 1:
            param[e] = new


@numba.njit(cache=True)
def _lookahead(cfg, param, v, mask, out):
    """Nesterov look-ahead with the BASE beta1 for trainable entries (§10 step 2, Q14)."""
    for e in range(param.size):
        out[e] = fma(cfg.beta1_base, v[e], param[e]) if mask[e] == 1 else param[e]


@numba.njit(cache=True)
def _train_step(net, cfg, work, x, lr, beta1, w, b, v_w, v_b, m_w, m_b, u_w, u_b, betas):
    """§10 steps 2-5 for one minibatch. Returns _gradient's five values, then maw, mab."""
    wl, bl = w, b
    if cfg.optimizer == 1 and cfg.nesterov == 1:
        _lookahead(cfg, w, v_w, net.wlogic, work.wl)
        _lookahead(cfg, b, v_b, net.blogic, work.bl)
        wl, bl = work.wl, work.bl
    loss, it_f, err_f, it_b, err_b = _gradient(net, cfg, work, x, wl, bl)
    maw, mab = _max_abs(work.gw), _max_abs(work.gb)
    _share_sums(work.gw, net.w_members, net.w_starts)
    _share_sums(work.gb, net.b_members, net.b_starts)
    if cfg.optimizer == 2 or cfg.optimizer == 3:
        betas[0] = f32(betas[0] * beta1)
        betas[1] = f32(betas[1] * cfg.beta2)
    _update(cfg, work.gw, w, net.wlogic, v_w, m_w, u_w, lr, beta1, betas[0], betas[1])
    _update(cfg, work.gb, b, net.blogic, v_b, m_b, u_b, lr, beta1, betas[0], betas[1])
    return loss, it_f, err_f, it_b, err_b, maw, mab


@numba.njit(cache=True)
def _predict(net, cfg, work, x, batch_size, w, b, out, iterations, residual):
    """Forward pass on consecutive chunks of batch_size rows, output transform of §6 (§12);
    each chunk's iterations and last residual."""
    for p in range(work.wt.size):
        work.wt[p] = w[net.pedge[p]]
    out0 = net.sizes[0] - net.sizes[2]
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start:start + batch_size]
        if net.sizes[6]:
            it, err, _ = _forward_levels(net, work, chunk, b)
        else:
            it, err, _ = _forward_implicit(net, cfg, work, chunk, b)
        iterations[start // batch_size] = it
        residual[start // batch_size] = err
        for d in range(chunk.shape[0]):
            _output_transform(cfg.loss, work.y, out0, d, work.prob)
            out[start + d, :] = work.prob


# -- packing: numba unboxes each argument separately (~0.1 µs per array), so the entry points take
# the static graph as one int64 array, the work buffers as one float32 array and the settings as
# one float64 array, and rebuild the named views inside (a slice or reshape costs nothing there).
NET_FIELDS = len(Net._fields)


def pack_net(arrays):
    """One int64 array: NET_FIELDS + 1 offsets, then the Net arrays one after another."""
    lengths = [np.asarray(a).size for a in arrays]
    offsets = NET_FIELDS + 1 + np.concatenate([[0], np.cumsum(lengths)])
    return np.concatenate([offsets] + [np.asarray(a, np.int64).ravel() for a in arrays])


@numba.njit(cache=True, inline="always")
def _field(packed, j):
    return packed[packed[j]:packed[j + 1]]


@numba.njit(cache=True)
def _net(p):
    return Net(_field(p, 0), _field(p, 1), _field(p, 2), _field(p, 3), _field(p, 4), _field(p, 5),
               _field(p, 6), _field(p, 7), _field(p, 8), _field(p, 9), _field(p, 10), _field(p, 11),
               _field(p, 12), _field(p, 13), _field(p, 14), _field(p, 15), _field(p, 16),
               _field(p, 17), _field(p, 18), _field(p, 19), _field(p, 20))


@numba.njit(cache=True)
def work_length(rows, k, slots, edges, outputs):
    """float32 entries of the packed work buffer for minibatches of up to `rows` samples."""
    return rows * (8 * slots + k + 1) + outputs + 2 * slots + 3 * edges


@numba.njit(cache=True, inline="always")
def _block(buf, start, height, rows):
    return buf[start:start + height * rows].reshape((height, rows)), start + height * rows


@numba.njit(cache=True)
def work_views(buf, rows, k, slots, edges, outputs):
    """Work: named views into the packed buffer (slot-major 2-D blocks [height, rows])."""
    at = 0
    a0, at = _block(buf, at, slots, rows)
    a1, at = _block(buf, at, slots, rows)
    y, at = _block(buf, at, k, rows)
    h, at = _block(buf, at, slots, rows)
    f, at = _block(buf, at, slots, rows)
    dlt, at = _block(buf, at, slots, rows)
    t0, at = _block(buf, at, slots, rows)
    t1, at = _block(buf, at, slots, rows)
    dlt_rows, at = _block(buf, at, rows, slots)
    acc, at = buf[at:at + rows], at + rows
    prob, at = buf[at:at + outputs], at + outputs
    wl, at = buf[at:at + edges], at + edges
    bl, at = buf[at:at + slots], at + slots
    wt, at = buf[at:at + edges], at + edges
    gw, at = buf[at:at + edges], at + edges
    gb = buf[at:at + slots]
    return Work(a0, a1, y, h, f, dlt, t0, t1, acc, prob, wl, bl, wt, gw, gb, dlt_rows)


@numba.njit(cache=True, inline="always")
def _settings(c):
    """Cfg from its packed float64 form (every float32 setting and integer is exact in float64)."""
    i64 = np.int64
    return Cfg(f32(c[0]), i64(c[1]), i64(c[2]), i64(c[3]), i64(c[4]), f32(c[5]), f32(c[6]),
               f32(c[7]), f32(c[8]), i64(c[9]), f32(c[10]))


@numba.njit(cache=True, inline="always")
def _unpack(packed_net, buf, rows):
    net = _net(packed_net)
    work = work_views(buf, rows, net.sizes[0], net.act.size, net.tgt.size, net.sizes[2])
    return net, work


@numba.njit(cache=True)
def train_step(x, lr, beta1, w, b, v_w, v_b, m_w, m_b, u_w, u_b, betas, packed_net, buf, rows,
               cfg):
    net, work = _unpack(packed_net, buf, rows)
    return _train_step(net, _settings(cfg), work, x, lr, beta1, w, b, v_w, v_b, m_w, m_b, u_w, u_b,
                       betas)


@numba.njit(cache=True)
def gradient(x, w, b, packed_net, buf, rows, cfg):
    net, work = _unpack(packed_net, buf, rows)
    return _gradient(net, _settings(cfg), work, x, w, b)


@numba.njit(cache=True)
def predict(x, batch_size, w, b, out, iterations, residual, packed_net, buf, rows, cfg):
    net, work = _unpack(packed_net, buf, rows)
    _predict(net, _settings(cfg), work, x, batch_size, w, b, out, iterations, residual)
