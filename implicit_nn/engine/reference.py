"""The reference engine: engine.md §3-§12 in plain NumPy, written to be read.

Vectorised over the samples of a minibatch; plain loops over slot positions, parent positions,
levels and iterations, in the original's summation order. float32 reproduces the original's
arithmetic (fma with one rounding, lanes.fma32); float64 evaluates the same algorithm in double
with the plain formulas, which gradcheck uses for finite differences. The optimisers of §11 are
here too, element-wise and vectorised (no order-sensitive arithmetic except the shared sums).
"""
from dataclasses import replace

import numpy as np

from implicit_nn.engine.activations import act_derivative, act_derivative64, act_value, act_value64
from implicit_nn.engine.base import BIG, Engine, Gradient, Solve, Solves, StepStats, keep_iterating
from implicit_nn.engine.lanes import elementwise_fma64 as fma64, fma32
from implicit_nn.engine.losses import adjoint_seed, loss_sum, loss_value64, output_transform

f32 = np.float32


def _fma64(a, b, c):
    return a * b + c


def max_abs(values):
    """Max-norm as calc_vector_norm: max |v| ignoring NaN, NaN when everything is NaN, 0 when
    empty (§13.3), in the dtype of the values."""
    values = np.abs(np.asarray(values))
    kind = values.dtype.type
    if values.size == 0:
        return kind(0.0)
    if np.isnan(values).all():
        return kind(np.nan)
    return kind(np.nanmax(values))


def fixed_point(sweep, state, settings):
    """The fixed-point loop of both directions: state, residual = sweep(state) until the stop
    rule ends it. Returns (state, Solve)."""
    residual, iterations = BIG, 0
    while keep_iterating(residual, iterations, settings.tol_fixit, settings.maxiter_fix):
        iterations += 1
        state, residual = sweep(state)
    return state, Solve.measured(iterations, residual, settings.tol_fixit)


def share_sums(grad, members, starts):
    """Shared groups (members[starts[g]:starts[g+1]]), in file order: every member gets the
    sequential float32 sum of its group (engine Q16), in place."""
    for g in range(starts.size - 1):
        group = members[starts[g]:starts[g + 1]]
        total = grad.dtype.type(0.0)
        for member in group:
            total = grad.dtype.type(total + grad[member])
        grad[group] = total


class ReferenceEngine(Engine):
    """The oracle every faster engine is held to."""

    name = "reference"

    def __init__(self, network, params, levels=None, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        super().__init__(network, params, levels)

    def setup(self):
        plan = self.plan
        single = self.dtype == np.float32
        self.fma = fma32 if single else _fma64
        self.act = act_value if single else act_value64
        self.act_diff = act_derivative if single else act_derivative64
        self.local = np.arange(plan.slot_num) - plan.first_ind_bias[plan.slot_owner]
        self.evaluated = np.arange(plan.neuron_num) < plan.neuron_limit
        self.grad_sources = np.arange(plan.neuron_num) < plan.source_limit

    # -- building blocks ---------------------------------------------------------------------
    def neuron_values(self, a, neurons):
        """y_i = Π_j f(a_{ob[i]+j}) for the given neurons, product in input order (§3.1)."""
        plan = self.plan
        neurons = neurons[self.evaluated[neurons]]
        f = self.act(plan.activation_type, a)
        y = np.ones((a.shape[0], neurons.size), self.dtype)
        counts = plan.bias_number[neurons]
        for j in range(int(counts.max(initial=0))):
            has = counts > j
            y[:, has] = y[:, has] * f[:, plan.first_ind_bias[neurons[has]] + j]
        return neurons, y

    def parent_sums(self, y, w, slots):
        """s_k = fma-chain over the parents of slot k (ascending edge index) of w_e·y_src (§3.1)."""
        plan = self.plan
        s = np.zeros((y.shape[0], slots.size), self.dtype)
        counts = plan.parent_number[slots]
        for p in range(int(counts.max(initial=0))):
            has = counts > p
            position = plan.first_ind_parent[slots[has]] + p
            s[:, has] = self.fma(w[plan.parent_edge[position]], y[:, plan.graph_p[position]], s[:, has])
        return s

    def child_sums(self, d_old, w, neurons):
        """s_i = fma-chain over the out-edges of neuron i (file order) of w_e·δ_tgt (§7)."""
        plan = self.plan
        s = np.zeros((d_old.shape[0], neurons.size), self.dtype)
        counts = plan.neighbour_number[neurons]
        for c in range(int(counts.max(initial=0))):
            has = counts > c
            edges = plan.first_ind_neighbour[neurons[has]] + c
            s[:, has] = self.fma(w[edges], d_old[:, plan.edge_target[edges]], s[:, has])
        return s

    def local_derivatives(self, a):
        """H[d,k] = f'(a_k)·Π_{l≠j} f(a_{ob+l}), float products in input order (§5)."""
        plan = self.plan
        f = self.act(plan.activation_type, a)
        h = self.act_diff(plan.activation_type, a)
        counts = plan.bias_number[plan.slot_owner]
        for l in range(int(plan.bias_number.max(initial=0))):
            use = (counts > l) & (self.local != l)
            h[:, use] = h[:, use] * f[:, plan.first_ind_bias[plan.slot_owner[use]] + l]
        return h

    def _data_slots(self, x):
        """Pre-activations x̂: data in the slots the input copy reaches, zeros elsewhere."""
        columns = self.plan.data_column
        a = np.zeros((x.shape[0], columns.size), self.dtype)
        a[:, columns >= 0] = x[:, columns[columns >= 0]]
        return a

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x, w, b):
        """(Y, A, Solve): implicit fixed point (§3) or PERT sweep (§4)."""
        if self.plan.level_path:
            return self.forward_levels(x, w, b)
        return self.forward_implicit(x, w, b)

    def forward_implicit(self, x, w, b):
        """a⁽¹⁾ = x̂ (no bias, engine Q2); y = F(a), a ← (x̂ + Wy) + b until max|Δa| ≤ tol; Y lags (engine Q1)."""
        plan = self.plan
        all_neurons, all_slots = np.arange(plan.neuron_num), np.arange(plan.slot_num)
        a_hat = self._data_slots(x)
        y = np.zeros((x.shape[0], plan.neuron_num), self.dtype)

        def sweep(a):
            neurons, values = self.neuron_values(a, all_neurons)
            y[:, neurons] = values
            a_new = (a_hat + self.parent_sums(y, w, all_slots)) + b
            return a_new, max_abs(a_new - a)

        a, solve = fixed_point(sweep, a_hat.copy(), plan.settings)
        return y, a, replace(solve, norm=max_abs(a))

    def forward_levels(self, x, w, b):
        """Bias first ((x̂+b)+Σ, engine Q12), then level by level; Y consistent with A; IF = depth."""
        plan = self.plan
        a = self._data_slots(x) + b
        y = np.zeros((x.shape[0], plan.neuron_num), self.dtype)
        for level in range(plan.depth):
            neurons, values = self.neuron_values(a, np.flatnonzero(plan.dist == level))
            y[:, neurons] = values
            slots = np.flatnonzero(plan.dist_input == level + 1)
            a[:, slots] = a[:, slots] + self.parent_sums(y, w, slots)
        neurons, values = self.neuron_values(a, np.flatnonzero(plan.dist == plan.depth))
        y[:, neurons] = values
        return y, a, Solve.exact(plan.depth)

    # -- backward ----------------------------------------------------------------------------
    def seed(self, y, x, h):
        """S: zero except the output neurons' slots (§6)."""
        plan = self.plan
        s = np.zeros_like(h)
        outputs = y[:, plan.neuron_num - plan.output_num:]
        targets = x[:, :plan.output_num].astype(self.dtype)
        s[:, plan.output_slots] = adjoint_seed(self.loss_kind, outputs, targets,
                                               h[:, plan.output_slots], plan.slot_output)
        return s

    def backward(self, s, h, w):
        """(D, Solve): implicit Neumann series (§7) or level sweep (§8)."""
        if self.plan.level_path:
            return self.backward_levels(s, h, w)
        return self.backward_implicit(s, h, w)

    def backward_implicit(self, s, h, w):
        """T ← H ⊙ (Wᵀ T), D += T until max|T| ≤ tol (engine Q4)."""
        plan = self.plan
        neurons = np.flatnonzero(self.evaluated)

        def sweep(state):
            d, t = state
            sums = np.zeros((s.shape[0], plan.neuron_num), self.dtype)
            sums[:, neurons] = self.child_sums(t, w, neurons)
            t = sums[:, plan.slot_owner] * h
            return (self.fma(sums[:, plan.slot_owner], h, d), t), max_abs(t)

        (d, _), solve = fixed_point(sweep, (s.copy(), s.copy()), plan.settings)
        return d, replace(solve, norm=max_abs(d))

    def backward_levels(self, s, h, w):
        """Levels depth−1 … 0, each from a snapshot of D; IB = depth − 1 (engine Q13)."""
        plan = self.plan
        d = s.copy()
        for level in range(plan.depth - 1, -1, -1):
            d_old = d.copy()
            neurons = np.flatnonzero((plan.dist == level) & self.evaluated)
            sums = self.child_sums(d_old, w, neurons)
            slot_mask = np.isin(plan.slot_owner, neurons)
            column = np.searchsorted(neurons, plan.slot_owner[slot_mask])
            d[:, slot_mask] = self.fma(sums[:, column], h[:, slot_mask], d[:, slot_mask])
        return d, Solve.exact(plan.depth - 1)

    # -- §9 ----------------------------------------------------------------------------------
    def assemble(self, d, y, w, batch):
        """G_w, G_b: sample-ordered sums, / B, + 2·alpha·w on every edge, clipping (§9 1-6)."""
        plan, settings = self.plan, self.plan.settings
        src, tgt = plan.edge_source, plan.edge_target
        counted = self.grad_sources[src]
        gw = np.zeros(plan.edge_num, self.dtype)
        gb = np.zeros(plan.slot_num, self.dtype)
        for row in range(batch):               # sequential over samples: the original's order
            gw[counted] = self.fma(d[row, tgt[counted]], y[row, src[counted]], gw[counted])
            gb = gb + d[row]
        gw = gw / self.dtype.type(batch)
        gb = gb / self.dtype.type(batch)
        gw = (gw.astype(np.float64) + 2.0 * np.float64(settings.alpha) * w.astype(np.float64)).astype(self.dtype)
        if settings.clipping == 1:
            theta = self.dtype.type(settings.clipping_threshold)
            for g in (gw, gb):          # the original's two steps: > θ → θ, then < −θ → −θ
                g[g > theta] = theta
                g[g < -theta] = -theta
        return gw, gb

    def loss(self, y, x):
        """Loss sum of the minibatch (lagging outputs in the implicit path)."""
        plan = self.plan
        outputs = y[:, plan.neuron_num - plan.output_num:]
        targets = x[:, :plan.output_num]
        if self.dtype == np.float32:
            return f32(loss_sum(self.loss_kind, outputs, targets.astype(np.float32)))
        return loss_value64(self.loss_kind, outputs, targets)

    def gradient(self, x, w=None, b=None):
        """engine.md §9 steps 1-6 at (w, b) (default: current parameters), no update."""
        w = self.weights if w is None else w
        b = self.biases if b is None else b
        w, b = np.asarray(w, self.dtype), np.asarray(b, self.dtype)
        x = np.asarray(x, self.dtype)
        batch = x.shape[0]
        with np.errstate(all="ignore"):
            y, a, forward = self.forward(x, w, b)
            h = self.local_derivatives(a)
            d, backward = self.backward(self.seed(y, x, h), h, w)
            gw, gb = self.assemble(d, y, w, batch)
            loss = self.loss(y, x) / self.dtype.type(batch)
        return Gradient(self.dtype.type(loss), gw, gb, forward, backward)

    def loss_at(self, x, w, b):
        """Loss sum of a minibatch at (w, b): the forward pass only."""
        x = np.asarray(x, self.dtype)
        with np.errstate(all="ignore"):
            y, _, _ = self.forward(x, np.asarray(w, self.dtype), np.asarray(b, self.dtype))
            return self.loss(y, x)

    # -- §10 ---------------------------------------------------------------------------------
    def lookahead(self):
        """(w̃, b̃): Nesterov look-ahead with the BASE adam_beta1 for SGD+nesterov (engine Q14), else a copy."""
        settings, state = self.plan.settings, self.state
        w, b = self.weights.copy(), self.biases.copy()
        if settings.optimizer == 1 and settings.nesterov == 1:
            beta = settings.adam_beta1
            w[self.weight_trainable] = fma32(beta, state.v_w, w)[self.weight_trainable]
            b[self.bias_trainable] = fma32(beta, state.v_b, b)[self.bias_trainable]
        return w, b

    def share_gradients(self, gw, gb):
        """Shared groups: every member gets the float32 sum of the group (engine Q16), in place."""
        plan = self.plan
        share_sums(gw, plan.weight_group_members, plan.weight_group_starts)
        share_sums(gb, plan.bias_group_members, plan.bias_group_starts)

    def train_step(self, x, lr, beta1):
        """One minibatch: gradient at the look-ahead point, MAW/MAB, shared sums, update."""
        w, b = self.lookahead()
        loss, gw, gb, forward, backward = self.gradient(x, w, b)
        maw, mab = max_abs(gw), max_abs(gb)
        self.share_gradients(gw, gb)
        self.update(gw, gb, f32(lr), f32(beta1))
        return StepStats(f32(loss), maw, mab, forward, backward)

    # -- §11 ---------------------------------------------------------------------------------
    def update(self, gw, gb, lr, beta1):
        """Optimiser step on the current parameters (state of every entry, writes masked)."""
        settings, state = self.plan.settings, self.state
        opt = settings.optimizer
        if opt in (2, 3):
            state.betas[0] = f32(state.betas[0] * beta1)
            state.betas[1] = f32(state.betas[1] * settings.adam_beta2)
        for grad, param, v, m, u, mask in (
            (gw, self.weights, state.v_w, state.m_w, state.u_w, self.weight_trainable),
            (gb, self.biases, state.v_b, state.m_b, state.u_b, self.bias_trainable),
        ):
            grad = np.asarray(grad, np.float32)
            if opt == 1:
                new = self._sgd(grad, param, v, lr, beta1)
            elif opt == 2:
                new = self._adam(grad, param, v, m, lr, beta1)
            elif opt == 3:
                new = self._adamax(grad, param, m, u, lr, beta1)
            else:
                continue
            param[mask] = new[mask]

    def _sgd(self, g, p, v, lr, beta1):
        """v = fma(β1, v, −(η·g)) as the original's contracted kernel (the product η·g rounded
        first); with Nesterov the step fma(β1, v_new, −(η·g)) is added to p separately."""
        step = lr * g
        v[:] = fma32(beta1, v, -step)
        if self.plan.settings.nesterov == 1:
            return p + fma32(beta1, v, -step)
        return p + v

    def _adam(self, g, p, v, m, lr, beta1):
        settings, (beta1t, beta2t) = self.plan.settings, self.state.betas
        beta2 = settings.adam_beta2
        g64 = g.astype(np.float64)
        m[:] = fma64(1.0 - np.float64(beta1), g64, (beta1 * m).astype(np.float64))
        v[:] = fma64(g64, (1.0 - np.float64(beta2)) * g64, (beta2 * v).astype(np.float64))
        m_hat = (m.astype(np.float64) / (1.0 - np.float64(beta1t))).astype(np.float32)
        v_hat = (v.astype(np.float64) / (1.0 - np.float64(beta2t))).astype(np.float32)
        with np.errstate(all="ignore"):
            return p - lr * m_hat / (np.sqrt(np.abs(v_hat)) + settings.adam_eps)

    def _adamax(self, g, p, m, u, lr, beta1):
        settings, beta1t = self.plan.settings, self.state.betas[0]
        m[:] = fma64(1.0 - np.float64(beta1), g.astype(np.float64), (beta1 * m).astype(np.float64))
        u[:] = np.fmax(settings.adam_beta2 * u, np.abs(g))  # fmaxf: a NaN operand is dropped
        denom = (u + settings.adam_eps).astype(np.float64)
        with np.errstate(all="ignore"):
            step = np.float64(lr) / (1.0 - np.float64(beta1t)) * m.astype(np.float64) / denom
        return (p.astype(np.float64) - step).astype(np.float32)

    # -- §12 ---------------------------------------------------------------------------------
    def predict_chunks(self, x, batch_size):
        """Forward pass on consecutive chunks of batch_size rows; output transform of §6."""
        plan = self.plan
        x = np.asarray(x, self.dtype)
        out = np.zeros((x.shape[0], plan.output_num), np.float32)
        w, b = self.weights.astype(self.dtype), self.biases.astype(self.dtype)
        solves = []
        with np.errstate(all="ignore"):
            for start in range(0, x.shape[0], batch_size):
                y, _, solve = self.forward(x[start:start + batch_size], w, b)
                out[start:start + batch_size] = output_transform(
                    self.loss_kind, y[:, plan.neuron_num - plan.output_num:])
                solves.append(solve)
        return out, Solves.of(solves)
