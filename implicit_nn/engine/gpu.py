"""The CuPy engine: kernels/*.cu on an NVIDIA GPU, same interface as the CPU engines.

Parameters, optimiser state and every per-minibatch buffer stay on the device. The fixed-point
stop tests (engine.md §3, §7) are device reductions: the host reads one integer per iteration
(how many minibatches are still iterating). The loss value and the adjoint seed are computed on
the host from the B×O outputs with the shared formulas of losses.py (glibc maths, as the
original's host code). Prediction runs many minibatches side by side, each frozen as soon as its
own stop test ends it, so results equal a minibatch-by-minibatch run (batch coupling, engine Q3).

CuPy is imported only when an engine is built: nothing on the CPU path imports this module's
dependencies. Every index array is the EnginePlan's (engine/plan.py), uploaded once by name.
"""
from pathlib import Path

import numpy as np

from implicit_nn.engine.base import ADJOINT, FORWARD, Engine, Gradient, Solve, Solves, StepStats
from implicit_nn.engine.losses import adjoint_seed, loss_sum, output_transform
from implicit_nn.errors import InputError

f32 = np.float32
i64 = np.int64
THREADS = 256
PREDICT_BUFFER_BYTES = 256 << 20   # per-pass device memory for batched predictions

KERNEL_NAMES = (
    "gather_weights", "init_inputs", "neuron_values", "implicit_inputs", "ff_inputs",
    "max_abs_chunks", "update_active", "local_derivatives", "adjoint_step",
    "weight_gradient", "bias_gradient", "group_sums",
    "lookahead", "sgd_update", "adam_update", "adamax_update",
)


def kernels_dir():
    """implicit_nn/kernels in an installed wheel (package data), else <repo>/kernels beside the
    package (checkout, editable install, or a copy of both folders as the GPU test harness makes)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "kernels"
    return installed if installed.is_dir() else package.parent / "kernels"


def kernel_sources():
    """Paths of kernels/*.cu, sorted; a clear error when the folder is missing or empty."""
    folder = kernels_dir()
    sources = sorted(folder.glob("*.cu")) if folder.is_dir() else []
    if not sources:
        raise InputError("CUDA kernel sources (*.cu) not found: this installation of "
                         "implicit-nn is incomplete (reinstall it)", str(folder), None)
    return sources


def gpu_available():
    """(True, device name) or (False, why the GPU backend cannot run here)."""
    try:
        import cupy
    except ImportError as err:
        return False, f"CuPy is not installed ({err}); install implicit-nn[gpu]"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:   # CUDARuntimeError and driver problems alike
        return False, f"CuPy found no usable CUDA device ({err})"
    if count < 1:
        return False, "CuPy found no CUDA device"
    return True, _device_name(cupy)


def _device_name(cupy):
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


# -- host arithmetic (plain numpy) -------------------------------------------------------------

def predict_rows_per_pass(batch_size, slots, neurons):
    """Rows of one batched prediction pass: whole minibatches within PREDICT_BUFFER_BYTES."""
    per_row = 4 * (3 * slots + neurons) + 64
    minibatches = max(1, PREDICT_BUFFER_BYTES // (per_row * batch_size))
    return minibatches * batch_size


# -- the engine --------------------------------------------------------------------------------

class GpuEngine(Engine):
    """engine.md §3-§12 on the device; the host only sequences kernels and reads stop flags.
    Parameters and optimiser moments are device arrays; Adam's β products stay on the host."""

    def setup(self):
        ok, why = gpu_available()
        if not ok:
            raise InputError(f"backend gpu: {why}", "--backend", None)
        import cupy
        self.cp = cupy
        self.name = f"gpu (cupy, {why})"
        self._kernels = _load_kernels(cupy)
        plan = self.plan
        self.K, self.A, self.E, self.O = plan.neuron_num, plan.slot_num, plan.edge_num, plan.output_num
        self.g = {name: cupy.asarray(array) for name, array in plan.arrays().items()}
        self.groups = ((self.g["weight_group_members"], self.g["weight_group_starts"],
                        plan.weight_groups_disjoint),
                       (self.g["bias_group_members"], self.g["bias_group_starts"],
                        plan.bias_groups_disjoint))

    def _to_backend(self, host_array):
        return self.cp.array(host_array, dtype=np.float32)

    def _to_host(self, array):
        return array.get() if isinstance(array, self.cp.ndarray) else np.array(array, np.float32)

    # -- launch helper -----------------------------------------------------------------------
    def _launch(self, name, count, *args, blocks=None, threads=THREADS):
        if count <= 0 and blocks is None:
            return
        grid = int(blocks if blocks is not None else -(-int(count) // threads))
        self._kernels[name]((grid,), (threads,), args)

    # -- forward -----------------------------------------------------------------------------
    def _weight_trans(self, w):
        wt = self.cp.empty(self.E, np.float32)
        self._launch("gather_weights", self.E, w, self.g["parent_edge"], wt, i64(self.E))
        return wt

    def _forward(self, x, wt, b, batch):
        """(Y, A, Solves) for rows of x cut into minibatches of `batch` rows (§3 / §4)."""
        cp, g, plan = self.cp, self.g, self.plan
        rows = x.shape[0]
        a = cp.empty(rows * self.A, np.float32)
        y = cp.zeros(rows * self.K, np.float32)
        width = i64(x.shape[1])        # data columns per row (the inputs; targets are the inputs, engine Q24)
        self._launch("init_inputs", rows * self.A, a, x, g["data_column"], b, i64(plan.level_path),
                     i64(rows), i64(self.A), width)
        chunks = -(-rows // batch)
        if plan.level_path:
            return self._forward_levels(a, y, wt, rows, chunks)
        active = cp.ones(chunks, np.int32)
        diff = cp.empty(rows * self.A, np.float32)

        def sweep():
            self._neuron_values(a, y, -1, active, batch, rows)
            self._launch("implicit_inputs", rows * self.A, a, diff, x, g["data_column"], y, wt, g["graph_p"],
                         g["parent_number"], g["first_ind_parent"], b, active, i64(batch), i64(rows),
                         i64(self.K), i64(self.A), width)
            return diff

        return y, a, self._fixed_point(FORWARD, sweep, a, active, batch, rows, chunks)

    def _fixed_point(self, direction, sweep, result, active, batch, rows, chunks):
        """The fixed-point loop of both directions (the direction's tol and maxiter,
        Settings.stop_rule): `sweep()` launches one sweep and returns the buffer whose per-chunk
        max-norm is the residual; each chunk stops on its own (engine Q3), the host reads one
        integer per sweep. Returns the chunks' Solves, with the per-chunk max-norm of `result`,
        the buffer holding the last iterate."""
        cp = self.cp
        err = cp.empty(chunks, np.float32)
        alive = cp.empty(1, np.int32)
        sweeps = cp.zeros(chunks, np.int64)
        tol, maxiter = self.plan.settings.stop_rule(direction)
        it = 0
        while it < maxiter:
            it += 1
            if not self._still_iterating(sweep(), err, active, alive, sweeps, tol, batch, rows,
                                         chunks):
                break
        norm = cp.empty(chunks, np.float32)
        self._launch("max_abs_chunks", 0, result, norm, cp.ones(chunks, np.int32), i64(batch),
                     i64(rows), i64(self.A), blocks=chunks)
        return Solves.measured(sweeps.get(), err.get(), tol, norm.get())

    def _forward_levels(self, a, y, wt, rows, chunks):
        g, depth = self.g, self.plan.depth
        everything = self.cp.ones(1, np.int32)
        for level in range(depth):
            self._neuron_values(a, y, level, everything, rows, rows)
            self._launch("ff_inputs", rows * self.A, a, y, wt, g["graph_p"], g["parent_number"],
                         g["first_ind_parent"], g["dist_input"], i64(level + 1), i64(rows), i64(self.K),
                         i64(self.A))
        self._neuron_values(a, y, depth, everything, rows, rows)
        return y, a, Solves.exact(chunks, depth)

    def _neuron_values(self, a, y, level, active, batch, rows):
        g = self.g
        self._launch("neuron_values", rows * self.K, a, y, g["bias_number"], g["first_ind_bias"],
                     g["activation_type"], g["dist"], i64(level), active, i64(batch), i64(rows),
                     i64(self.K), i64(self.A), i64(self.plan.neuron_limit))

    def _still_iterating(self, values, err, active, alive, sweeps, tol, batch, rows, chunks):
        """Per-minibatch max-norm of `values`, sweep counts, stop flags; the one scalar the host
        reads."""
        self._launch("max_abs_chunks", 0, values, err, active, i64(batch), i64(rows), i64(self.A),
                     blocks=chunks)
        self._launch("update_active", 0, err, active, alive, sweeps, i64(chunks),
                     f32(tol), blocks=1)
        return int(alive.get()[0]) > 0

    # -- backward ----------------------------------------------------------------------------
    def _backward(self, seed, h, w, rows):
        """(D, Solve): Neumann series until max|T| ≤ tol (§7) or the level sweep (§8)."""
        cp, g, plan = self.cp, self.g, self.plan
        d = seed
        args = (g["edge_target"], g["first_ind_neighbour"], g["neighbour_number"], g["first_ind_bias"],
                g["bias_number"], g["dist"])
        sizes = (i64(rows), i64(self.K), i64(self.A), i64(plan.neuron_limit))
        if plan.level_path:
            d_old = cp.empty_like(d)
            for level in range(plan.depth - 1, -1, -1):
                cp.copyto(d_old, d)
                self._launch("adjoint_step", rows * self.K, d, d_old, d_old, h, w, *args, i64(level), i64(0),
                             *sizes)
            return d, Solve.exact(plan.depth - 1)
        t = [d.copy(), d.copy()]        # T of the last sweep, the next T

        def sweep():
            self._launch("adjoint_step", rows * self.K, d, t[1], t[0], h, w, *args, i64(-1), i64(1), *sizes)
            t.reverse()
            return t[0]

        return d, self._fixed_point(ADJOINT, sweep, d, cp.ones(1, np.int32), rows, rows, 1)[0]

    # -- H, seed, gradient (§5, §6, §9) ------------------------------------------------------
    def _local_derivatives(self, a, rows):
        g = self.g
        h = self.cp.zeros(rows * self.A, np.float32)
        self._launch("local_derivatives", rows * self.K, a, h, g["bias_number"], g["first_ind_bias"],
                     g["activation_type"], i64(rows), i64(self.K), i64(self.A), i64(self.plan.neuron_limit))
        return h

    def _seed(self, y, h, x_host, rows):
        """(S, loss): the seed of the adjoint and f32(loss sum / B), on the host from the B×O
        outputs with losses.py's formulas (the original's host code)."""
        cp, g, plan = self.cp, self.g, self.plan
        outputs = y.reshape(rows, self.K)[:, self.K - self.O:].get()
        targets = x_host[:, :self.O]
        with np.errstate(all="ignore"):
            seed_out = adjoint_seed(plan.settings.loss, outputs, targets,
                                    h.reshape(rows, self.A)[:, g["output_slots"]].get(), plan.slot_output)
            loss = f32(f32(loss_sum(plan.settings.loss, outputs, targets)) / f32(rows))
        seed = cp.zeros((rows, self.A), np.float32)
        seed[:, g["output_slots"]] = cp.asarray(np.asarray(seed_out, np.float32))
        return seed.reshape(-1), loss

    def _assemble(self, d, y, w, rows):
        """(G_w, G_b) on the device (§9 steps 1-6)."""
        cp, g, p = self.cp, self.g, self.plan.settings
        gw = cp.empty(self.E, np.float32)
        gb = cp.empty(self.A, np.float32)
        self._launch("weight_gradient", self.E, gw, d, y, w, g["edge_source"], g["edge_target"], i64(self.E),
                     i64(rows), i64(self.K), i64(self.A), i64(self.plan.source_limit), f32(p.alpha),
                     i64(p.clipping), f32(p.clipping_threshold))
        self._launch("bias_gradient", self.A, gb, d, i64(rows), i64(self.A), i64(p.clipping),
                     f32(p.clipping_threshold))
        return gw, gb

    def _gradient(self, x_host, w, b):
        """Gradient with device arrays (gw, gb) at device parameters (w, b)."""
        x_host = np.ascontiguousarray(x_host, np.float32)
        rows = x_host.shape[0]
        y, a, forward = self._forward(self.cp.asarray(x_host), self._weight_trans(w), b, rows)
        h = self._local_derivatives(a, rows)
        seed, loss = self._seed(y, h, x_host, rows)
        d, backward = self._backward(seed, h, w, rows)
        gw, gb = self._assemble(d, y, w, rows)
        return Gradient(loss, gw, gb, forward[0], backward)

    def gradient(self, x, w=None, b=None):
        w = self.weights if w is None else self._to_backend(w)
        b = self.biases if b is None else self._to_backend(b)
        result = self._gradient(x, w, b)
        return result._replace(weights=result.weights.get(), biases=result.biases.get())

    # -- §10 -----------------------------------------------------------------------------------
    def _lookahead(self):
        """Device (w̃, b̃): base-adam_beta1 look-ahead for SGD + Nesterov (engine Q14), else the parameters."""
        p, g, state = self.plan.settings, self.g, self.state
        if not (p.optimizer == 1 and p.nesterov == 1):
            return self.weights, self.biases
        out = []
        for param, v, logic in ((self.weights, state.v_w, g["graph_logic"]),
                                (self.biases, state.v_b, g["bias_logic"])):
            moved = self.cp.empty_like(param)
            self._launch("lookahead", param.size, moved, param, v, logic, i64(param.size), f32(p.adam_beta1))
            out.append(moved)
        return tuple(out)

    def train_step(self, x, lr, beta1):
        """One minibatch: gradient at the look-ahead point, MAW/MAB, shared sums, update."""
        w, b = self._lookahead()
        loss, gw, gb, forward, backward = self._gradient(x, w, b)
        maw, mab = self._max_abs_pair(gw, gb)
        for grad, (members, starts, disjoint) in zip((gw, gb), self.groups):
            count = starts.size - 1
            if count:
                blocks, threads = (-(-count // THREADS), THREADS) if disjoint else (1, 1)
                self._kernels["group_sums"]((blocks,), (threads,), (grad, members, starts, i64(count)))
        self.update(gw, gb, f32(lr), f32(beta1))
        return StepStats(f32(loss), maw, mab, forward, backward)

    def _max_abs_pair(self, gw, gb):
        """(max|G_w|, max|G_b|) ignoring NaN (§13.3), one transfer of two floats."""
        cp = self.cp
        out = cp.zeros(2, np.float32)
        one = cp.ones(1, np.int32)
        for slot, grad in enumerate((gw, gb)):
            if grad.size:
                self._launch("max_abs_chunks", 0, grad, out[slot:], one, i64(1), i64(1), i64(grad.size), blocks=1)
        maw, mab = out.get()
        return f32(maw), f32(mab)

    def update(self, gw, gb, lr, beta1):
        """Optimiser step on the device (§11); state for every entry, writes where logic == 1."""
        p, g, s = self.plan.settings, self.g, self.state
        opt = p.optimizer
        if opt in (2, 3):
            s.betas[0] = f32(s.betas[0] * beta1)
            s.betas[1] = f32(s.betas[1] * p.adam_beta2)
        for grad, param, v, m, u, logic in ((gw, self.weights, s.v_w, s.m_w, s.u_w, g["graph_logic"]),
                                            (gb, self.biases, s.v_b, s.m_b, s.u_b, g["bias_logic"])):
            n = i64(param.size)
            if opt == 1:
                self._launch("sgd_update", n, param, grad, v, logic, n, f32(lr), f32(beta1), i64(p.nesterov))
            elif opt == 2:
                self._launch("adam_update", n, param, grad, m, v, logic, n, f32(lr), f32(beta1),
                             f32(p.adam_beta2), s.betas[0], s.betas[1], f32(p.adam_eps))
            elif opt == 3:
                self._launch("adamax_update", n, param, grad, m, u, logic, n, f32(lr), f32(beta1),
                             f32(p.adam_beta2), s.betas[0], f32(p.adam_eps))

    # -- §12 -----------------------------------------------------------------------------------
    def predict_chunks(self, x, batch_size):
        """Outputs of consecutive minibatches of batch_size rows (many per pass), transformed (§6)."""
        cp = self.cp
        x = np.ascontiguousarray(x, np.float32)
        rows = x.shape[0]
        out = np.zeros((rows, self.O), np.float32)
        wt = self._weight_trans(self.weights)
        step = predict_rows_per_pass(batch_size, self.A, self.K)
        passes = []
        for start in range(0, rows, step):
            part = cp.asarray(x[start:start + step])
            y, _, solves = self._forward(part, wt, self.biases, batch_size)
            out[start:start + part.shape[0]] = y.reshape(part.shape[0], self.K)[:, self.K - self.O:].get()
            passes.append(solves)
        with np.errstate(all="ignore"):
            return output_transform(self.plan.settings.loss, out), Solves.joined(passes)


_MODULE = None
# --fmad=false: no compiler contracts a*b+c; kernels/engine.cu writes each fma it wants.
NVRTC_OPTIONS = ("--std=c++14", "--fmad=false")


def _load_kernels(cupy):
    """Compile kernels/*.cu once per process (CuPy also caches the binary on disk)."""
    global _MODULE
    if _MODULE is None:
        sources = kernel_sources()
        code = "\n".join(path.read_text() for path in sources)
        try:
            module = cupy.RawModule(code=code, options=NVRTC_OPTIONS)
            _MODULE = {name: module.get_function(name) for name in KERNEL_NAMES}
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(f"CUDA kernels failed to load: {first}", str(sources[0]), None) from err
    return _MODULE
