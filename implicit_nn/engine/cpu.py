"""The numba CPU engine: the reference engine's arithmetic in compiled whole-minibatch kernels.

One compiled call per training minibatch (look-ahead, forward, H, seed, backward, gradient
assembly, MAW/MAB, shared sums, optimiser update) and one per prediction pass over all chunks;
the kernels live in `cpu_kernels.py`, the plan and settings reach them packed (`packing.py`).
Work buffers are allocated once per engine (and grown if a larger minibatch ever arrives).
Held to `reference.py` bit for bit by tests/test_stages.py.
"""
import numba
import numpy as np

from implicit_nn.engine import cpu_kernels as kernels
from implicit_nn.engine.base import Engine, Gradient, Solves, Steps
from implicit_nn.engine.lanes import LANES
from implicit_nn.engine.packing import pack_plan, pack_settings

f32 = np.float32


class CpuEngine(Engine):
    """Parameters and optimiser state are host float32 arrays the kernels update in place."""

    name = "cpu (numba)"

    def setup(self):
        if self.plan.block_solver:      # in the console line, and a checkpoint refuses a mix
            self.name = "cpu (numba), block solver"
        self._packed_plan = pack_plan(self.plan)
        self._packed_settings = pack_settings(self.plan.settings)
        self._rows, self._workers = 0, 0
        self._part_buf = np.zeros(0, np.float32)
        batch = int(getattr(self.params, "mini_batch_size", 1))     # no minibatch exceeds learn_num
        self._reserve(max(min(batch, int(getattr(self.params, "learn_num", batch))), 1))

    def _reserve(self, rows, workers=1):
        """Work buffers for minibatches of up to `rows` samples (slot-major, the row length
        padded to whole blocks of LANES samples), one set per worker thread of a prediction;
        a training step uses the first (a split one for its y, δ and gradients: _parts)."""
        if rows <= self._rows and workers <= self._workers:
            return
        rows = -(-max(rows, self._rows) // LANES) * LANES
        workers = max(workers, self._workers)
        sizes = (self.plan.neuron_num, self.plan.slot_num, self.plan.edge_num, self.plan.output_num)
        self._length = kernels.work_length(rows, *sizes)
        self._buf = np.zeros(workers * self._length, np.float32)
        self._work = kernels.work_views(self._buf, rows, *sizes)
        self._rows, self._workers = rows, workers

    def _parts(self, batch):
        """(work buffers, their row length) of the parts a minibatch of up to `batch` rows may
        be split into, one per numba thread (thread_num); none below SPLIT_ROWS rows or on one
        thread. Kept and grown like the minibatch's buffers."""
        workers = numba.get_num_threads() if batch >= kernels.SPLIT_ROWS else 1
        if workers < 2:
            return self._part_buf[:0], 0
        rows = -(-(-(-batch // LANES)) // workers) * LANES     # a part: its share of the blocks
        length = kernels.work_length(rows, self.plan.neuron_num, self.plan.slot_num,
                                     self.plan.edge_num, self.plan.output_num)
        if self._part_buf.size < workers * length:
            self._part_buf = np.zeros(workers * length, np.float32)
        return self._part_buf[:workers * length], rows

    def _solves(self, iterations, residual, norm, tol=None):
        """Solves of the kernels' iteration counts, last residuals and last iterates' norms
        (tol: each solve's tolerance, default the forward one)."""
        if self.plan.level_path:
            return Solves.exact(len(iterations), iterations)
        return Solves.measured(iterations, residual,
                               self.plan.settings.tol_fixit if tol is None else tol, norm)

    def _step_solves(self, it_f, err_f, norm_f, it_b, err_b, norm_b):
        """(forward Solve, adjoint Solve) of one minibatch, each with its own tolerance."""
        settings = self.plan.settings
        solves = self._solves([it_f, it_b], [err_f, err_b], [norm_f, norm_b],
                              np.array([settings.tol_fixit, settings.tol_backward], np.float32))
        return solves[0], solves[1]

    def _call(self, kernel, x, *args, rows=None, workers=1):
        """A kernel on minibatch x (or chunks of `rows` of it) with the packed plan, the work
        buffers of `workers` threads and the settings last. The buffers' rows are as long as the
        largest minibatch, never the whole prediction set: a slot's row is the stride of every
        sweep (cache lines, pages)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        self._reserve(x.shape[0] if rows is None else rows, workers)
        buf = self._buf[:workers * self._length]
        return kernel(x, *args, self._packed_plan, buf, self._rows, self._packed_settings)

    def train_step(self, x, lr, beta1):
        """engine.md §10 steps 2-5 in one compiled call."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.train_steps(x, 0, 1, max(len(x), 1), np.array([lr], np.float32),
                                np.array([beta1], np.float32))[0]

    def train_steps(self, rows, first, end, batch, lr, beta1):
        """Minibatches first … end−1 of `rows` in one compiled call (no Python between them);
        a minibatch of SPLIT_ROWS rows or more is split among numba's threads (thread_num), bit
        for bit the single-thread results."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._reserve(batch)
        part_buf, part_rows = self._parts(batch)
        s, out = self.state, np.zeros((9, end - first), np.float64)
        kernels.train_steps(rows, first, end, batch, np.ascontiguousarray(lr, np.float32),
                            np.ascontiguousarray(beta1, np.float32), self.weights, self.biases,
                            s.v_w, s.v_b, s.m_w, s.m_b, s.u_w, s.u_b, s.betas, out,
                            self._packed_plan, self._buf[:self._length], self._rows, part_buf,
                            part_rows, self._packed_settings)
        loss, it_f, err_f, norm_f, it_b, err_b, norm_b, maw, mab = out
        forward = self._solves(it_f, err_f, norm_f)
        backward = self._solves(it_b, err_b, norm_b, self.plan.settings.tol_backward)
        return Steps(loss.astype(f32), maw.astype(f32), mab.astype(f32), forward, backward)

    def compile(self, training=True):
        """The kernels on zero rows: numba compiles each for the very argument types of a run
        (or loads it from its cache); nothing runs."""
        rows, rates = np.zeros((0, self.params.input_num), np.float32), np.zeros(0, np.float32)
        if training:
            self.train_steps(rows, 0, 0, 1, rates, rates)
        self.predict_chunks(rows, 1)

    def gradient(self, x, w=None, b=None):
        """engine.md §9 steps 1-6 at (w, b) (default: current parameters), no update."""
        w = np.ascontiguousarray(self.weights if w is None else w, dtype=np.float32)
        b = np.ascontiguousarray(self.biases if b is None else b, dtype=np.float32)
        loss, *solved = self._call(kernels.gradient, x, w, b)
        return Gradient(f32(loss), self._work.gw.copy(), self._work.gb.copy(),
                        *self._step_solves(*solved))

    def predict_chunks(self, x, batch_size):
        """Forward pass on consecutive chunks of batch_size rows, output transform (§12); the
        chunks shared among numba's threads (thread_num), bit for bit the serial results."""
        batch_size = min(int(batch_size), max(len(x), 1))   # the same chunks, int64-sized
        chunks = -(-len(x) // batch_size)
        workers = max(1, min(numba.get_num_threads(), chunks))
        out = np.zeros((len(x), self.plan.output_num), np.float32)
        iterations = np.zeros(chunks, np.int64)
        residual, norm = np.zeros(chunks, np.float32), np.zeros(chunks, np.float32)
        self._call(kernels.predict, x, batch_size, self.weights, self.biases, out, iterations,
                   residual, norm, rows=batch_size, workers=workers)
        return out, self._solves(iterations, residual, norm)
