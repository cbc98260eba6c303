"""The CuPy engine: kernels/*.cu on an NVIDIA GPU, same interface as the CPU engines.

Parameters, optimiser state and every per-minibatch buffer stay on the device. The fixed-point
stop tests (engine.md §3, §7) are device reductions: the host reads one integer per iteration
(how many minibatches are still iterating). The loss value and the adjoint seed are computed on
the host from the B×O outputs with the shared formulas of losses.py (glibc maths, as the
original's host code). Prediction runs many minibatches side by side, each frozen as soon as its
own stop test ends it, so results equal a minibatch-by-minibatch run (batch coupling, Q3).

CuPy is imported only when an engine is built: nothing on the CPU path imports this module's
dependencies. The index helpers below are plain numpy so that CI can test them without a GPU.
"""
from pathlib import Path

import numpy as np

from implicit_nn.engine.base import Engine, Gradient, Solve, Solves, StepStats
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


# -- index helpers (plain numpy) ---------------------------------------------------------------

def launch_limits(network):
    """(neuron_limit, source_limit): the original's launch coverage (engine.md §14, Q21).

    Neuron-indexed 2-D kernels reach ids below 16·⌈A/16⌉; the weight-gradient kernel reaches
    source neurons below 256·⌈E/256⌉.
    """
    k = network.neuron_num
    slots, edges = network.all_input_num, network.all_neighbour_num
    return min(k, 16 * -(-slots // 16)), min(k, 256 * -(-edges // 256))


def data_columns(network, neuron_limit):
    """int64[A]: the data column written into each slot (first slot of input neuron i), else −1."""
    columns = np.full(network.all_input_num, -1, np.int64)
    inputs = np.arange(min(network.input_num, neuron_limit))
    first = np.asarray(network.first_ind_bias, np.int64)[inputs]
    keep = first < network.all_input_num
    columns[first[keep]] = inputs[keep]
    return columns


def output_slots(network):
    """(slots, output index of each): the input slots of the output neurons, in slot order."""
    first_output = network.neuron_num - network.output_num
    if network.output_num == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    slots = np.arange(network.first_ind_bias[first_output], network.all_input_num, dtype=np.int64)
    return slots, np.asarray(network.slot_owner, np.int64)[slots] - first_output


def flatten_groups(groups):
    """(members, starts) of shared groups: members[starts[g]:starts[g+1]] is group g."""
    members = np.concatenate([np.asarray(g, np.int64) for g in groups]) if groups else np.zeros(0, np.int64)
    starts = np.zeros(len(groups) + 1, np.int64)
    starts[1:] = np.cumsum([len(g) for g in groups])
    return members, starts


def groups_disjoint(groups):
    """True when no index is in two groups (or twice in one): groups may then be summed in parallel."""
    members, _ = flatten_groups(groups)
    return np.unique(members).size == members.size


def predict_rows_per_pass(batch_size, slots, neurons):
    """Rows of one batched prediction pass: whole minibatches within PREDICT_BUFFER_BYTES."""
    per_row = 4 * (3 * slots + neurons) + 64
    minibatches = max(1, PREDICT_BUFFER_BYTES // (per_row * batch_size))
    return minibatches * batch_size


# -- the engine --------------------------------------------------------------------------------

class GpuEngine(Engine):
    """engine.md §3-§12 on the device; the host only sequences kernels and reads stop flags."""

    def __init__(self, network, params, levels=None):
        ok, why = gpu_available()
        if not ok:
            raise InputError(f"backend gpu: {why}", "--backend", None)
        import cupy
        self.cp = cupy
        self.name = f"gpu (cupy, {why})"
        self._kernels = _load_kernels(cupy)
        super().__init__(network, params, levels)     # masks, loss id; device state and zero parameters
        cp, net = cupy, network
        dev = lambda a: cp.asarray(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
        self.neuron_limit, self.source_limit = launch_limits(net)
        self.K, self.A, self.E = net.neuron_num, net.all_input_num, net.all_neighbour_num
        self.O = net.output_num
        self.g = {name: dev(getattr(net, name)) for name in (
            "bias_number", "first_ind_bias", "activation_type", "neighbour_number", "first_ind_neighbour",
            "parent_number", "first_ind_parent", "graph_p", "parent_edge", "edge_source", "edge_target",
            "graph_logic", "bias_logic")}
        self.g["data_column"] = dev(data_columns(net, self.neuron_limit))
        if levels is not None:
            self.g["dist"] = dev(levels.dist)
            self.g["dist_input"] = dev(levels.dist_input)
        else:
            self.g["dist"] = self.g["dist_input"] = cp.zeros(1, np.int64)
        self.out_slots, self.slot_output = output_slots(net)
        self.out_slots_dev = dev(self.out_slots)
        self.groups = []
        for groups in (net.shared_weight_groups, net.shared_bias_groups):
            members, starts = flatten_groups(groups)
            self.groups.append((dev(members), dev(starts), len(groups), groups_disjoint(groups)))

    # -- parameters and state: device arrays behind the Engine attributes -----------------------
    @property
    def weights(self):
        return self._w.get()

    @weights.setter
    def weights(self, value):
        self._w = self.cp.asarray(np.array(value, np.float32))

    @property
    def biases(self):
        return self._b.get()

    @biases.setter
    def biases(self, value):
        self._b = self.cp.asarray(np.array(value, np.float32))

    def reset_optimizer(self):
        """All optimiser state zero on the device and Adam's running β products 1 (§11)."""
        e, a = self.network.all_neighbour_num, self.network.all_input_num
        self.state = {name: self.cp.zeros(e if name.endswith("w") else a, np.float32)
                      for name in ("v_w", "v_b", "m_w", "m_b", "u_w", "u_b")}
        self.beta1t = f32(1.0)
        self.beta2t = f32(1.0)

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
        cp, g = self.cp, self.g
        rows = x.shape[0]
        a = cp.empty(rows * self.A, np.float32)
        y = cp.zeros(rows * self.K, np.float32)
        ff = self.levels is not None
        width = i64(x.shape[1])        # data columns per row (the inputs; targets are the inputs, Q24)
        self._launch("init_inputs", rows * self.A, a, x, g["data_column"], b, i64(ff), i64(rows),
                     i64(self.A), width)
        chunks = -(-rows // batch)
        if ff:
            return self._forward_levels(a, y, wt, rows, chunks)
        active = cp.ones(chunks, np.int32)
        diff = cp.empty(rows * self.A, np.float32)
        err = cp.empty(chunks, np.float32)
        alive = cp.empty(1, np.int32)
        sweeps = cp.zeros(chunks, np.int64)
        it = 0
        while it < self.params.maxiter_fix:
            it += 1
            self._neuron_values(a, y, -1, active, batch, rows)
            self._launch("implicit_inputs", rows * self.A, a, diff, x, g["data_column"], y, wt, g["graph_p"],
                         g["parent_number"], g["first_ind_parent"], b, active, i64(batch), i64(rows),
                         i64(self.K), i64(self.A), width)
            if not self._still_iterating(diff, err, active, alive, sweeps, batch, rows, chunks):
                break
        return y, a, self._solves(sweeps, err)

    def _solves(self, sweeps, err):
        """Per-chunk Solves from the device's sweep counts and last max-norms (one transfer)."""
        return Solves.measured(sweeps.get(), err.get(), self.params.tol_fixit)

    def _forward_levels(self, a, y, wt, rows, chunks):
        g, lv = self.g, self.levels
        everything = self.cp.ones(1, np.int32)
        for level in range(lv.dist_max):
            self._neuron_values(a, y, level, everything, rows, rows)
            self._launch("ff_inputs", rows * self.A, a, y, wt, g["graph_p"], g["parent_number"],
                         g["first_ind_parent"], g["dist_input"], i64(level + 1), i64(rows), i64(self.K),
                         i64(self.A))
        self._neuron_values(a, y, lv.dist_max, everything, rows, rows)
        return y, a, Solves.exact(chunks, lv.dist_max)

    def _neuron_values(self, a, y, level, active, batch, rows):
        g = self.g
        self._launch("neuron_values", rows * self.K, a, y, g["bias_number"], g["first_ind_bias"],
                     g["activation_type"], g["dist"], i64(level), active, i64(batch), i64(rows),
                     i64(self.K), i64(self.A), i64(self.neuron_limit))

    def _still_iterating(self, values, err, active, alive, sweeps, batch, rows, chunks):
        """Per-minibatch max-norm of `values`, sweep counts, stop flags; the one scalar the host
        reads."""
        self._launch("max_abs_chunks", 0, values, err, active, i64(batch), i64(rows), i64(self.A),
                     blocks=chunks)
        self._launch("update_active", 0, err, active, alive, sweeps, i64(chunks),
                     f32(self.params.tol_fixit), blocks=1)
        return int(alive.get()[0]) > 0

    # -- backward ----------------------------------------------------------------------------
    def _backward(self, seed, h, w, rows):
        """(D, Solve): Neumann series until max|T| ≤ tol (§7) or the level sweep (§8)."""
        cp, g = self.cp, self.g
        d = seed
        args = (g["edge_target"], g["first_ind_neighbour"], g["neighbour_number"], g["first_ind_bias"],
                g["bias_number"], g["dist"])
        sizes = (i64(rows), i64(self.K), i64(self.A), i64(self.neuron_limit))
        if self.levels is not None:
            d_old = cp.empty_like(d)
            for level in range(self.levels.dist_max - 1, -1, -1):
                cp.copyto(d_old, d)
                self._launch("adjoint_step", rows * self.K, d, d_old, d_old, h, w, *args, i64(level), i64(0),
                             *sizes)
            return d, Solve.exact(self.levels.dist_max - 1)
        t_old, t_new = d.copy(), d.copy()
        active = cp.ones(1, np.int32)
        err = cp.empty(1, np.float32)
        alive = cp.empty(1, np.int32)
        sweeps = cp.zeros(1, np.int64)
        it = 0
        while it < self.params.maxiter_fix:
            it += 1
            self._launch("adjoint_step", rows * self.K, d, t_new, t_old, h, w, *args, i64(-1), i64(1), *sizes)
            t_old, t_new = t_new, t_old
            if not self._still_iterating(t_old, err, active, alive, sweeps, rows, rows, 1):
                break
        return d, self._solves(sweeps, err)[0]

    # -- gradient (§9) -----------------------------------------------------------------------
    def _gradient(self, x_host, w, b):
        """Gradient with device arrays (gw, gb) at device parameters (w, b)."""
        cp, g, p = self.cp, self.g, self.params
        x_host = np.ascontiguousarray(x_host, np.float32)
        rows = x_host.shape[0]
        x = cp.asarray(x_host)
        y, a, forward = self._forward(x, self._weight_trans(w), b, rows)
        h = cp.zeros(rows * self.A, np.float32)
        self._launch("local_derivatives", rows * self.K, a, h, g["bias_number"], g["first_ind_bias"],
                     g["activation_type"], i64(rows), i64(self.K), i64(self.A), i64(self.neuron_limit))
        outputs = y.reshape(rows, self.K)[:, self.K - self.O:].get()
        targets = x_host[:, :self.O]
        h2 = h.reshape(rows, self.A)
        with np.errstate(all="ignore"):
            seed_out = adjoint_seed(self.loss_kind, outputs, targets, h2[:, self.out_slots_dev].get(),
                                    self.slot_output)
            loss = f32(f32(loss_sum(self.loss_kind, outputs, targets)) / f32(rows))
        seed = cp.zeros((rows, self.A), np.float32)
        seed[:, self.out_slots_dev] = cp.asarray(np.asarray(seed_out, np.float32))
        d, backward = self._backward(seed.reshape(-1), h, w, rows)
        gw = cp.empty(self.E, np.float32)
        gb = cp.empty(self.A, np.float32)
        self._launch("weight_gradient", self.E, gw, d, y, w, g["edge_source"], g["edge_target"], i64(self.E),
                     i64(rows), i64(self.K), i64(self.A), i64(self.source_limit), f32(p.alpha),
                     i64(p.clipping), f32(p.clipping_threshold))
        self._launch("bias_gradient", self.A, gb, d, i64(rows), i64(self.A), i64(p.clipping),
                     f32(p.clipping_threshold))
        return Gradient(loss, gw, gb, forward[0], backward)

    def gradient(self, x, w=None, b=None):
        cp = self.cp
        w = self._w if w is None else cp.asarray(np.asarray(w, np.float32))
        b = self._b if b is None else cp.asarray(np.asarray(b, np.float32))
        result = self._gradient(x, w, b)
        return result._replace(weights=result.weights.get(), biases=result.biases.get())

    # -- §10 -----------------------------------------------------------------------------------
    def _lookahead(self):
        """Device (w̃, b̃): base-adam_beta1 look-ahead for SGD + Nesterov (Q14), else the parameters."""
        p, g = self.params, self.g
        if not (p.optimizer == 1 and p.nesterov == 1):
            return self._w, self._b
        out = []
        for param, v, logic in ((self._w, self.state["v_w"], g["graph_logic"]),
                                (self._b, self.state["v_b"], g["bias_logic"])):
            moved = self.cp.empty_like(param)
            self._launch("lookahead", param.size, moved, param, v, logic, i64(param.size), f32(p.adam_beta1))
            out.append(moved)
        return tuple(out)

    def train_step(self, x, lr, beta1):
        """One minibatch: gradient at the look-ahead point, MAW/MAB, shared sums, update."""
        w, b = self._lookahead()
        loss, gw, gb, forward, backward = self._gradient(x, w, b)
        maw, mab = self._max_abs_pair(gw, gb)
        for grad, (members, starts, count, disjoint) in zip((gw, gb), self.groups):
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
        p, g, s = self.params, self.g, self.state
        opt = p.optimizer
        if opt in (2, 3):
            self.beta1t = f32(self.beta1t * beta1)
            self.beta2t = f32(self.beta2t * f32(p.adam_beta2))
        for grad, param, v, m, u, logic in ((gw, self._w, s["v_w"], s["m_w"], s["u_w"], g["graph_logic"]),
                                            (gb, self._b, s["v_b"], s["m_b"], s["u_b"], g["bias_logic"])):
            n = i64(param.size)
            if opt == 1:
                self._launch("sgd_update", n, param, grad, v, logic, n, f32(lr), f32(beta1), i64(p.nesterov))
            elif opt == 2:
                self._launch("adam_update", n, param, grad, m, v, logic, n, f32(lr), f32(beta1),
                             f32(p.adam_beta2), self.beta1t, self.beta2t, f32(p.adam_eps))
            elif opt == 3:
                self._launch("adamax_update", n, param, grad, m, u, logic, n, f32(lr), f32(beta1),
                             f32(p.adam_beta2), self.beta1t, f32(p.adam_eps))

    # -- §12 -----------------------------------------------------------------------------------
    def predict_chunks(self, x, batch_size):
        """Outputs of consecutive minibatches of batch_size rows (many per pass), transformed (§6)."""
        cp = self.cp
        x = np.ascontiguousarray(x, np.float32)
        rows = x.shape[0]
        out = np.zeros((rows, self.O), np.float32)
        if rows == 0:
            return out, Solves.of([])
        wt = self._weight_trans(self._w)
        step = predict_rows_per_pass(batch_size, self.A, self.K)
        solves = []
        for start in range(0, rows, step):
            part = cp.asarray(x[start:start + step])
            y, _, part_solves = self._forward(part, wt, self._b, batch_size)
            out[start:start + part.shape[0]] = y.reshape(part.shape[0], self.K)[:, self.K - self.O:].get()
            solves.extend(part_solves[c] for c in range(len(part_solves)))
        with np.errstate(all="ignore"):
            return output_transform(self.loss_kind, out), Solves.of(solves)


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
