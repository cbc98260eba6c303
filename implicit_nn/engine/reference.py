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
from implicit_nn.engine.base import (ADJOINT, BIG, FORWARD, Engine, Gradient, Solve, Solves,
                                     StepStats, keep_iterating)
from implicit_nn.engine.lanes import elementwise_fma64 as fma64, fma32
from implicit_nn.engine.losses import adjoint_seed, loss_sum, loss_value64, output_transform
from implicit_nn.solver import ANDERSON, ANDERSON_REG

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


def fixed_point(sweep, state, settings, direction=FORWARD, accelerate=None):
    """The fixed-point loop of both directions: state, residual = sweep(state) until the stop
    rule (the direction's tol and maxiter) ends it; `accelerate(state, new, iterations)`, when
    given, replaces each new state the loop goes on from (never the one it returns).
    Returns (state, Solve)."""
    tol, maxiter = settings.stop_rule(direction)
    residual, iterations = BIG, 0
    while keep_iterating(residual, iterations, tol, maxiter):
        iterations += 1
        new, residual = sweep(state)
        if accelerate is not None and keep_iterating(residual, iterations, tol, maxiter):
            new = accelerate(state, new, iterations)
        state = new
    return state, Solve.measured(iterations, residual, tol)


class Anderson:
    """Anderson mixing (type II, difference form) per sample, the oracle of
    cpu_kernels._anderson_mix.

    Iterates are [batch, n] (float32 as training's); the last m + 1 inputs x_i and outputs
    g_i = G(x_i) are kept in a ring (slot (i − 1) mod (m + 1)). With residuals f_i = g_i − x_i
    (float64) and the differences ΔF_j = f_{k−j} − f_{k−j−1} (j = 0 newest), each sample solves
    (ΔFᵀΔF + λI) γ = ΔFᵀ f_k (Gaussian elimination in column order, λ = ANDERSON_REG · max diag)
    and goes on from t_k − Σ γ_j (t_{k−j} − t_{k−j−1}), t_i = (1 − β) x_i + β g_i, rounded to
    float32; the first anderson_start sweeps are plain. The regularisation leans towards the plain (damped) step t_k, which a sample takes
    when its system fails (a pivot not > 0, a γ not finite). ΔFᵀΔF is kept between iterations:
    each iteration adds the new column's row, sequential over the slots."""

    def __init__(self, settings, shape, dtype=np.float32):
        ring = settings.anderson_m + 1
        self.beta = np.float64(settings.anderson_beta)
        self.start = settings.anderson_start
        self.xs = np.zeros((ring,) + shape, dtype)
        self.gs = np.zeros((ring,) + shape, dtype)
        self.gram = np.zeros((ring, ring, shape[0]))

    def slot(self, iteration):
        return (iteration - 1) % self.xs.shape[0]

    def residual(self, iteration):
        s = self.slot(iteration)
        return self.gs[s].astype(np.float64) - self.xs[s].astype(np.float64)

    def column(self, iteration):
        """ΔF of the iterates iteration − 1 and iteration."""
        return self.residual(iteration) - self.residual(iteration - 1)

    def term(self, iteration):
        """(1 − β) x_i + β g_i in float64 (g_i itself when β is 1)."""
        s = self.slot(iteration)
        if self.beta == 1.0:
            return self.gs[s].astype(np.float64)
        return (1.0 - self.beta) * self.xs[s].astype(np.float64) + \
            self.beta * self.gs[s].astype(np.float64)

    def __call__(self, x, g, sweep):
        """The iterate after sweep `sweep` (x in, g out): g itself for the first anderson_start
        sweeps, then the mixing of the history from there."""
        k = sweep - self.start
        if k <= 0:
            return g
        self.xs[self.slot(k)], self.gs[self.slot(k)] = x, g
        n = min(k - 1, self.xs.shape[0] - 1)
        if n == 0:
            return self.term(k).astype(self.xs.dtype)
        newest, f_k = self.column(k), self.residual(k)
        rhs = np.zeros((n, x.shape[0]))
        for j in range(n):
            other = self.column(k - j)
            total, right = np.zeros(x.shape[0]), np.zeros(x.shape[0])
            for c in range(x.shape[1]):
                total = total + newest[:, c] * other[:, c]
                right = right + other[:, c] * f_k[:, c]
            self.gram[self.slot(k), self.slot(k - j)] = total
            self.gram[self.slot(k - j), self.slot(k)] = total
            rhs[j] = right
        a = np.zeros((n, n, x.shape[0]))
        for i in range(n):
            for j in range(n):
                a[i, j] = self.gram[self.slot(k - i), self.slot(k - j)]
        gamma, solved = _mixing_weights(a, rhs, n)
        mixed = self.term(k)
        for j in range(n):
            mixed = mixed - gamma[j][:, None] * (self.term(k - j) - self.term(k - j - 1))
        return np.where(solved[:, None], mixed, self.term(k)).astype(self.xs.dtype)


def _mixing_weights(a, z, n):
    """γ of every sample from (a + λI) γ = z, a [n, n, batch] and z [n, batch] (both destroyed),
    and whether the system was solved; the arithmetic order of cpu_kernels._mixing_weights."""
    with np.errstate(all="ignore"):
        top = a[0, 0].copy()
        for j in range(1, n):
            top = np.maximum(top, a[j, j])      # NaN wins, as cpu_kernels._nan_max
        lam = ANDERSON_REG * top
        for j in range(n):
            a[j, j] = a[j, j] + lam
        solved = np.ones(a.shape[2], bool)
        for p in range(n):
            solved &= a[p, p] > 0
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
            solved &= np.isfinite(z[j])
        return z, solved


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

    def __init__(self, network, params, levels=None, dtype=np.float32, solver=None):
        self.dtype = np.dtype(dtype)
        super().__init__(network, params, levels, solver)

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

        a, solve = fixed_point(sweep, a_hat.copy(), plan.settings, FORWARD,
                               self._accelerator(a_hat.shape))
        return y, a, replace(solve, norm=max_abs(a))

    def _accelerator(self, shape):
        """Anderson mixing for a solve of iterates of this shape, or None (plain iteration)."""
        settings = self.plan.settings
        return Anderson(settings, shape, self.dtype) if settings.solver == ANDERSON else None

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
        """T ← H ⊙ (Wᵀ T), D += T until max|T| ≤ tol (engine Q4). With Anderson, the same fixed point
        in the form it accelerates: D ← S + H ⊙ (Wᵀ D) (one fma per slot, the first sweep's
        bits equal the Neumann series'), residual max|D' − D|."""
        plan = self.plan
        neurons = np.flatnonzero(self.evaluated)

        def child_sums(values):
            sums = np.zeros((s.shape[0], plan.neuron_num), self.dtype)
            sums[:, neurons] = self.child_sums(values, w, neurons)
            return sums[:, plan.slot_owner]

        def sweep(state):
            d, t = state
            sums = child_sums(t)
            t = sums * h
            return (self.fma(sums, h, d), t), max_abs(t)

        def direct_sweep(d):
            d_new = self.fma(child_sums(d), h, s)
            return d_new, max_abs(d_new - d)

        accelerate = self._accelerator(s.shape)
        if accelerate is None:
            (d, _), solve = fixed_point(sweep, (s.copy(), s.copy()), plan.settings, ADJOINT)
        else:
            d, solve = fixed_point(direct_sweep, s.copy(), plan.settings, ADJOINT, accelerate)
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
