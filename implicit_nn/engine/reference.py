"""The reference engine: engine.md §3-§9 and §12 in plain NumPy, written to be read.

Vectorised over the samples of a minibatch; plain loops over slot positions, parent positions,
levels and iterations, in the original's summation order. float32 reproduces the original's
arithmetic (fma with one rounding, base.fma32); float64 evaluates the
same algorithm in double with the plain formulas, which gradcheck uses for finite differences.
"""
import numpy as np

from implicit_nn.engine.activations import act_derivative, act_derivative64, act_value, act_value64
from implicit_nn.engine.base import BIG, Engine, Gradient, Solve, Solves, fma32, max_abs
from implicit_nn.engine.losses import adjoint_seed, loss_sum, loss_value64, output_transform


def _fma64(a, b, c):
    return a * b + c


def _nan_max_abs64(values):
    values = np.abs(values)
    if values.size == 0:
        return 0.0
    return np.nan if np.isnan(values).all() else float(np.nanmax(values))


class ReferenceEngine(Engine):
    """The oracle every faster engine is held to."""

    name = "reference"

    def __init__(self, network, params, levels=None, dtype=np.float32):
        super().__init__(network, params, levels)
        self.dtype = np.dtype(dtype)
        single = self.dtype == np.float32
        self.fma = fma32 if single else _fma64
        self.act = act_value if single else act_value64
        self.act_diff = act_derivative if single else act_derivative64
        self.max_abs = max_abs if single else _nan_max_abs64
        net = network
        self.act_type = np.asarray(net.activation_type, np.int64)
        self.owner = np.asarray(net.slot_owner, np.int64)
        self.local = np.arange(net.all_input_num) - np.asarray(net.first_ind_bias)[self.owner]
        out0 = net.neuron_num - net.output_num
        self.output_slots = np.arange(net.first_ind_bias[out0], net.all_input_num) if net.output_num else np.zeros(0, np.int64)
        self.slot_output = self.owner[self.output_slots] - out0
        # §14 coverage gaps of the original launch configuration (Q21)
        self.evaluated = np.arange(net.neuron_num) < 16 * -(-net.all_input_num // 16)
        self.grad_sources = np.arange(net.neuron_num) < 256 * -(-net.all_neighbour_num // 256)

    # -- building blocks ---------------------------------------------------------------------
    def neuron_values(self, a, neurons):
        """y_i = Π_j f(a_{ob[i]+j}) for the given neurons, product in input order (§3.1)."""
        net = self.network
        neurons = neurons[self.evaluated[neurons]]
        f = self.act(self.act_type, a)
        y = np.ones((a.shape[0], neurons.size), self.dtype)
        counts = net.bias_number[neurons]
        for j in range(int(counts.max(initial=0))):
            has = counts > j
            y[:, has] = y[:, has] * f[:, net.first_ind_bias[neurons[has]] + j]
        return neurons, y

    def parent_sums(self, y, w, slots):
        """s_k = fma-chain over the parents of slot k (ascending edge index) of w_e·y_src (§3.1)."""
        net = self.network
        s = np.zeros((y.shape[0], slots.size), self.dtype)
        counts = net.parent_number[slots]
        for p in range(int(counts.max(initial=0))):
            has = counts > p
            edges = net.parent_edge[net.first_ind_parent[slots[has]] + p]
            s[:, has] = self.fma(w[edges], y[:, net.edge_source[edges]], s[:, has])
        return s

    def child_sums(self, d_old, w, neurons):
        """s_i = fma-chain over the out-edges of neuron i (file order) of w_e·δ_tgt (§7)."""
        net = self.network
        s = np.zeros((d_old.shape[0], neurons.size), self.dtype)
        counts = net.neighbour_number[neurons]
        for c in range(int(counts.max(initial=0))):
            has = counts > c
            edges = net.first_ind_neighbour[neurons[has]] + c
            s[:, has] = self.fma(w[edges], d_old[:, net.edge_target[edges]], s[:, has])
        return s

    def local_derivatives(self, a):
        """H[d,k] = f'(a_k)·Π_{l≠j} f(a_{ob+l}), float products in input order (§5)."""
        net = self.network
        f = self.act(self.act_type, a)
        h = self.act_diff(self.act_type, a)
        counts = net.bias_number[self.owner]
        for l in range(int(net.bias_number.max(initial=0))):
            use = (counts > l) & (self.local != l)
            h[:, use] = h[:, use] * f[:, net.first_ind_bias[self.owner[use]] + l]
        return h

    def _data_slots(self, x):
        """Pre-activations with data in the first slot of each input neuron, zeros elsewhere."""
        net = self.network
        a = np.zeros((x.shape[0], net.all_input_num), self.dtype)
        a[:, net.first_ind_bias[:net.input_num]] = x[:, :net.input_num]
        return a

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x, w, b):
        """(Y, A, Solve): implicit fixed point (§3) or PERT sweep (§4)."""
        if self.levels is not None:
            return self.forward_levels(x, w, b)
        return self.forward_implicit(x, w, b)

    def forward_implicit(self, x, w, b):
        """a⁽¹⁾ = x̂ (no bias, Q2); y = F(a), a ← (x̂ + Wy) + b until max|Δa| ≤ tol; Y lags (Q1)."""
        net, p = self.network, self.params
        all_neurons, all_slots = np.arange(net.neuron_num), np.arange(net.all_input_num)
        a = self._data_slots(x)
        a_hat = a.copy()
        y = np.zeros((x.shape[0], net.neuron_num), self.dtype)
        err, it = BIG, 0
        while err > p.tol_fixit and it < p.maxiter_fix:
            it += 1
            neurons, values = self.neuron_values(a, all_neurons)
            y[:, neurons] = values
            a_old = a
            a = (a_hat + self.parent_sums(y, w, all_slots)) + b
            err = self.max_abs(a - a_old)
        return y, a, Solve.measured(it, err, p.tol_fixit)

    def forward_levels(self, x, w, b):
        """Bias first ((x̂+b)+Σ, Q12), then level by level; Y consistent with A; IF = dist_max."""
        net, lv = self.network, self.levels
        a = self._data_slots(x) + b
        y = np.zeros((x.shape[0], net.neuron_num), self.dtype)
        for level in range(lv.dist_max):
            neurons, values = self.neuron_values(a, np.flatnonzero(lv.dist == level))
            y[:, neurons] = values
            slots = np.flatnonzero(lv.dist_input == level + 1)
            a[:, slots] = a[:, slots] + self.parent_sums(y, w, slots)
        neurons, values = self.neuron_values(a, np.flatnonzero(lv.dist == lv.dist_max))
        y[:, neurons] = values
        return y, a, Solve.exact(lv.dist_max)

    # -- backward ----------------------------------------------------------------------------
    def seed(self, y, x, h):
        """S: zero except the output neurons' slots (§6)."""
        net = self.network
        s = np.zeros_like(h)
        outputs = y[:, net.neuron_num - net.output_num:]
        targets = x[:, :net.output_num].astype(self.dtype)
        s[:, self.output_slots] = adjoint_seed(self.loss_kind, outputs, targets,
                                               h[:, self.output_slots], self.slot_output)
        return s

    def backward(self, s, h, w):
        """(D, Solve): implicit Neumann series (§7) or level sweep (§8)."""
        if self.levels is not None:
            return self.backward_levels(s, h, w)
        return self.backward_implicit(s, h, w)

    def backward_implicit(self, s, h, w):
        """T ← H ⊙ (Wᵀ T), D += T until max|T| ≤ tol (Q4)."""
        net, p = self.network, self.params
        neurons = np.flatnonzero(self.evaluated)
        d, t = s.copy(), s.copy()
        err, it = BIG, 0
        while it < p.maxiter_fix and err > p.tol_fixit:
            it += 1
            d_old = t
            sums = np.zeros((s.shape[0], net.neuron_num), self.dtype)
            sums[:, neurons] = self.child_sums(d_old, w, neurons)
            t = sums[:, self.owner] * h
            d = self.fma(sums[:, self.owner], h, d)
            err = self.max_abs(t)
        return d, Solve.measured(it, err, p.tol_fixit)

    def backward_levels(self, s, h, w):
        """Levels dist_max−1 … 0, each from a snapshot of D; IB = dist_max − 1 (Q13)."""
        net, lv = self.network, self.levels
        d = s.copy()
        for level in range(lv.dist_max - 1, -1, -1):
            d_old = d.copy()
            neurons = np.flatnonzero((lv.dist == level) & self.evaluated)
            sums = self.child_sums(d_old, w, neurons)
            slot_mask = np.isin(self.owner, neurons)
            column = np.searchsorted(neurons, self.owner[slot_mask])
            d[:, slot_mask] = self.fma(sums[:, column], h[:, slot_mask], d[:, slot_mask])
        return d, Solve.exact(lv.dist_max - 1)

    # -- §9 ----------------------------------------------------------------------------------
    def assemble(self, d, y, w, batch):
        """G_w, G_b: sample-ordered sums, / B, + 2·alpha·w on every edge, clipping (§9 1-6)."""
        net, p = self.network, self.params
        src, tgt = net.edge_source, net.edge_target
        counted = self.grad_sources[src]
        gw = np.zeros(net.all_neighbour_num, self.dtype)
        gb = np.zeros(net.all_input_num, self.dtype)
        for row in range(batch):               # sequential over samples: the original's order
            gw[counted] = self.fma(d[row, tgt[counted]], y[row, src[counted]], gw[counted])
            gb = gb + d[row]
        gw = gw / self.dtype.type(batch)
        gb = gb / self.dtype.type(batch)
        gw = (gw.astype(np.float64) + 2.0 * np.float64(p.alpha) * w.astype(np.float64)).astype(self.dtype)
        if p.clipping == 1:
            theta = self.dtype.type(p.clipping_threshold)
            for g in (gw, gb):          # the original's two steps: > θ → θ, then < −θ → −θ
                g[g > theta] = theta
                g[g < -theta] = -theta
        return gw, gb

    def loss(self, y, x):
        """Loss sum of the minibatch (lagging outputs in the implicit path)."""
        net = self.network
        outputs = y[:, net.neuron_num - net.output_num:]
        targets = x[:, :net.output_num]
        if self.dtype == np.float32:
            return np.float32(loss_sum(self.loss_kind, outputs, targets.astype(np.float32)))
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

    # -- §12 ---------------------------------------------------------------------------------
    def predict_chunks(self, x, batch_size):
        """Forward pass on consecutive chunks of batch_size rows; output transform of §6."""
        net = self.network
        x = np.asarray(x, self.dtype)
        out = np.zeros((x.shape[0], net.output_num), np.float32)
        w, b = self.weights.astype(self.dtype), self.biases.astype(self.dtype)
        solves = []
        with np.errstate(all="ignore"):
            for start in range(0, x.shape[0], batch_size):
                y, _, solve = self.forward(x[start:start + batch_size], w, b)
                out[start:start + batch_size] = output_transform(self.loss_kind, y[:, net.neuron_num - net.output_num:])
                solves.append(solve)
        return out, Solves.of(solves)
