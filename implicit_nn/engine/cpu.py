"""The numba CPU engine: the reference engine's arithmetic in compiled whole-minibatch kernels.

One compiled call per training minibatch (look-ahead, forward, H, seed, backward, gradient
assembly, MAW/MAB, shared sums, optimiser update) and one per prediction pass over all chunks;
the kernels live in `cpu_kernels.py`. Work buffers are allocated once per engine (and grown if a
larger minibatch ever arrives). Held to `reference.py` by tests/test_cpu_engine.py.
"""
import numpy as np

from implicit_nn.engine import cpu_kernels as kernels
from implicit_nn.engine.base import Engine, Gradient, Solve, Solves, StepStats

f32 = np.float32


def _int64(values):
    """A private writable int64 copy (one array type for every kernel argument)."""
    return np.array(values, dtype=np.int64)


class CpuEngine(Engine):
    """Same interface as every engine (docs/architecture.md); parameters stay host float32."""

    name = "cpu (numba)"

    def __init__(self, network, params, levels=None):
        super().__init__(network, params, levels)
        self._net = self._static_arrays(network, levels)
        p = params
        self._cfg = np.array([f32(p.tol_fixit), int(p.maxiter_fix), int(self.loss_kind),
                              int(p.optimizer), int(p.nesterov), f32(p.adam_beta1),
                              f32(p.adam_beta2), f32(p.adam_eps), f32(p.alpha), int(p.clipping),
                              f32(p.clipping_threshold)], np.float64)      # kernels.Cfg order
        self._rows = 0
        batch = int(getattr(p, "mini_batch_size", 1))      # no minibatch exceeds learn_num
        self._reserve(max(min(batch, int(getattr(p, "learn_num", batch))), 1))

    def _static_arrays(self, net, levels):
        """kernels.Net: the graph arrays the kernels index, plus sizes and level order."""
        k, slots, edges = net.neuron_num, net.all_input_num, net.all_neighbour_num
        ob = _int64(net.first_ind_bias)
        data_col = np.full(slots, -1, np.int64)
        for i in range(min(net.input_num, k)):      # data goes into the first slot of input i
            if ob[i] < slots:
                data_col[ob[i]] = i
        ff = levels is not None
        dist = _int64(levels.dist) if ff else np.zeros(k, np.int64)
        sizes = np.array([k, net.input_num, net.output_num,
                          min(k, 16 * -(-slots // 16)),       # neurons the launch grid reaches (Q21)
                          min(k, 256 * -(-edges // 256)),     # sources of the weight-gradient kernel
                          int(levels.dist_max) if ff else 0, int(ff)], np.int64)
        return kernels.pack_net(kernels.Net(
            sizes=sizes, nb=_int64(net.bias_number), ob=ob, nn=_int64(net.neighbour_number),
            on=_int64(net.first_ind_neighbour), tgt=_int64(net.edge_target),
            act=_int64(net.activation_type), pn=_int64(net.parent_number),
            fip=_int64(net.first_ind_parent), psrc=_int64(net.edge_source)[_int64(net.parent_edge)],
            pedge=_int64(net.parent_edge), data_col=data_col,
            order=_int64(np.argsort(dist, kind="stable")), dist=dist,
            wlogic=_int64(net.graph_logic), blogic=_int64(net.bias_logic),
            w_members=_int64(self._weight_groups[0]), w_starts=_int64(self._weight_groups[1]),
            b_members=_int64(self._bias_groups[0]), b_starts=_int64(self._bias_groups[1]),
            run=_int64([self._is_run(net, i) for i in range(k)])))

    @staticmethod
    def _is_run(net, i):
        """Do neuron i's out-edges target consecutive ascending slots (a dense layer)?"""
        first, count = net.first_ind_neighbour[i], net.neighbour_number[i]
        targets = np.asarray(net.edge_target[first:first + count])
        return bool(count) and bool(np.all(np.diff(targets) == 1))

    def _reserve(self, rows):
        """Work buffers for minibatches of up to `rows` samples (slot-major, the row length
        padded to whole blocks of kernels.LANES samples)."""
        if rows <= self._rows:
            return
        rows = -(-rows // kernels.LANES) * kernels.LANES
        net = self.network
        k, slots, edges = net.neuron_num, net.all_input_num, net.all_neighbour_num

        self._buf = np.zeros(kernels.work_length(rows, k, slots, edges, net.output_num), np.float32)
        self._work = kernels.work_views(self._buf, rows, k, slots, edges, net.output_num)
        self._rows = rows

    # Adam's running β products live in one array the kernel updates in place.
    def reset_optimizer(self):
        self._betas = np.ones(2, np.float32)
        super().reset_optimizer()

    @property
    def beta1t(self):
        return self._betas[0]

    @beta1t.setter
    def beta1t(self, value):
        self._betas[0] = value

    @property
    def beta2t(self):
        return self._betas[1]

    @beta2t.setter
    def beta2t(self, value):
        self._betas[1] = value

    @staticmethod
    def _batch(x):
        return np.ascontiguousarray(x, dtype=np.float32)

    def train_step(self, x, lr, beta1):
        """engine.md §10 steps 2-5 in one compiled call."""
        x = self._batch(x)
        self._reserve(x.shape[0])
        loss, it_f, err_f, it_b, err_b, maw, mab = kernels.train_step(
            x, f32(lr), f32(beta1), self.weights, self.biases, self.v_w, self.v_b, self.m_w,
            self.m_b, self.u_w, self.u_b, self._betas, self._net, self._buf, self._rows, self._cfg)
        return StepStats(f32(loss), f32(maw), f32(mab), *self._solves(it_f, err_f, it_b, err_b))

    def _solves(self, it_f, err_f, it_b, err_b):
        """(forward, backward) Solve of the kernels' iteration counts and last residuals."""
        if self.levels is not None:
            return Solve.exact(it_f), Solve.exact(it_b)
        tol = self.params.tol_fixit
        return Solve.measured(it_f, err_f, tol), Solve.measured(it_b, err_b, tol)

    def gradient(self, x, w=None, b=None):
        """engine.md §9 steps 1-6 at (w, b) (default: current parameters), no update."""
        x = self._batch(x)
        self._reserve(x.shape[0])
        w = np.ascontiguousarray(self.weights if w is None else w, dtype=np.float32)
        b = np.ascontiguousarray(self.biases if b is None else b, dtype=np.float32)
        loss, it_f, err_f, it_b, err_b = kernels.gradient(x, w, b, self._net, self._buf,
                                                          self._rows, self._cfg)
        return Gradient(f32(loss), self._work.gw.copy(), self._work.gb.copy(),
                        *self._solves(it_f, err_f, it_b, err_b))

    def predict_chunks(self, x, batch_size):
        """Forward pass on consecutive chunks of batch_size rows, output transform (§12)."""
        x = self._batch(x)
        batch_size = min(int(batch_size), max(x.shape[0], 1))   # the same chunks, int64-sized
        self._reserve(batch_size)
        out = np.zeros((x.shape[0], self.network.output_num), np.float32)
        chunks = -(-x.shape[0] // batch_size)
        iterations, residual = np.zeros(chunks, np.int64), np.zeros(chunks, np.float32)
        kernels.predict(x, batch_size, self.weights, self.biases, out, iterations, residual,
                        self._net, self._buf, self._rows, self._cfg)
        if self.levels is not None:
            return out, Solves.exact(chunks, self.levels.dist_max)
        return out, Solves.measured(iterations, residual, self.params.tol_fixit)
