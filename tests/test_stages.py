"""Every backend against the reference engine, stage by stage by name (engine.md §3-§11).

Y, A, H, S (the adjoint seed), D, G_w, G_b, the loss and both solves of one minibatch are taken
from each engine in pipeline order, so a failure names the first stage that differs; training
steps compare StepStats, parameters and the whole OptimizerState; predictions compare the outputs
and every chunk's solve. The numba engine does the reference's arithmetic in the reference's
order, so it is held BIT FOR BIT on random cyclic and acyclic hypergraphs (every loss, every
activation, clipping, shared groups, frozen entries, maxiter_fix 0, short last chunks) and on the
paper's dense layers. The GPU engine (marked `gpu`) is held to float32 tolerances: CUDA's maths
library differs from glibc by ulps and an implicit loop may then stop one sweep apart (§13.4).

Tests marked `nojit` also run under NUMBA_DISABLE_JIT=1 (test_kernels_run_as_plain_python), where
every numba kernel is plain Python with the same results.
"""
import os
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path

import numba
import numpy as np
import pytest

import netgen
from implicit_nn.engine import cpu_kernels, make_engine
from implicit_nn.engine.packing import KernelPlan, KernelSettings
from implicit_nn.levels import pert_levels
from implicit_nn.network import read_network
from implicit_nn.tools.make_config import make_autoencoder

LOSSES = ("MSE", "MAE", "multiclassification_crossentropy", "multilabeling_crossentropy",
          "bce_multilabeling")
ALL_ACTIVATIONS = (0, 1, 2, 3, 4, 6, 8, 9, 10, 11)     # 7 (1/a, a pole at 0) alone below
STAGES = ("Y", "A", "H", "S", "D", "G_w", "G_b", "loss", "forward", "backward")
ROOT = Path(__file__).resolve().parents[1]


def _gpu_usable():
    try:
        from implicit_nn.engine.gpu import gpu_available
    except ImportError:
        return False
    return gpu_available()[0]


GPU_MARKS = [pytest.mark.gpu, pytest.mark.skipif(not _gpu_usable(), reason="no CuPy with a CUDA device")]


def on_gpu(*values):
    """Parameters of a gpu-marked case: the backend "gpu" followed by `values`."""
    return pytest.param("gpu", *values, marks=GPU_MARKS)


EVERY = ("cpu", on_gpu())


# -- networks ------------------------------------------------------------------------------------

def data(rows, cols, loss="MSE", seed=0):
    x = np.random.default_rng(seed).uniform(0.1, 0.9, (rows, cols)).astype(np.float32)
    if loss == "multiclassification_crossentropy":     # the CE seed assumes Σ t = 1 (engine Q7)
        x = (x / x.sum(axis=1, keepdims=True)).astype(np.float32)
    return x


def random_case(tmp_path, seed, cyclic=True, loss="MSE", params=None, **options):
    """(network, params, levels, w, b) of a random hypergraph with parameters in its contraction
    range; shared groups, frozen entries, L2 and clipping unless asked otherwise."""
    overrides = dict(train_lossfunction_type=loss, alpha=np.float32(0.01), tol_fixit=np.float32(1e-6),
                     maxiter_fix=100, clipping=1, clipping_threshold=np.float32(0.5),
                     ff_optimization=int(not cyclic))
    overrides.update(params or {})
    options.setdefault("simple_outputs", loss == "bce_multilabeling")
    options.setdefault("activations", ALL_ACTIVATIONS)
    options.setdefault("shared_weight_groups", 2)
    options.setdefault("shared_bias_groups", 2)
    net, prm, spec = netgen.random_network(tmp_path, seed=seed, params_overrides=overrides,
                                           cyclic=cyclic, **options)
    w, b = netgen.random_parameters(net, seed)
    return net, prm, None if cyclic else netgen.levels_of(spec), w, b


def paper_case(tmp_path, family, layers=(3, 29, 13, 5), seed=3, **params):
    """The paper's autoencoder (make-config) with random weights: dense out-edge runs."""
    tag, _, neurons, _ = make_autoencoder(tmp_path, family, *layers, 9 if family != "v0" else 3)
    files = {f"{kind}_datas": str(tmp_path / f"{kind}_autoencoder_{tag}.dat")
             for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b")}
    cyclic = family != "v0"
    values = {**netgen.ENGINE_DEFAULTS, **files, "ff_optimization": int(not cyclic),
              "tol_fixit": np.float32(1e-5), "maxiter_fix": 50, **params}
    prm = netgen.SimpleNamespace(**values, neuron_num=neurons, input_num=layers[-1],
                                 output_num=layers[-1], shared_weights_num=0, shared_biases_num=0)
    net = read_network(prm)
    w, b = netgen.random_parameters(net, seed, scale=0.3)
    return net, prm, None if cyclic else pert_levels(net), w, b


def engines(case, backend):
    """(reference, backend engine) on one case, both at the case's parameters."""
    net, prm, levels, w, b = case
    pair = make_engine(net, prm, "reference", levels=levels), make_engine(net, prm, backend, levels=levels)
    for engine in pair:
        engine.set_parameters(w, b)
    return pair


# -- stages of one minibatch, per backend ---------------------------------------------------------

def reference_stages(engine, x):
    w, b = engine.get_parameters()
    with np.errstate(all="ignore"):
        y, a, forward = engine.forward(x, w, b)
        h = engine.local_derivatives(a)
        s = engine.seed(y, x, h)
        d, backward = engine.backward(s, h, w)
        gw, gb = engine.assemble(d, y, w, x.shape[0])
        loss = np.float32(engine.loss(y, x) / np.float32(x.shape[0]))
    return dict(Y=y, A=a, H=h, S=s, D=d, G_w=gw, G_b=gb, loss=loss, forward=forward, backward=backward)


def cpu_stages(engine, x):
    """The numba kernels' stage functions one by one, each result read from the work buffers."""
    plan = KernelPlan(*(getattr(engine.plan, name) for name in KernelPlan._fields))
    settings = KernelSettings(*astuple(engine.plan.settings))
    w, b = engine.get_parameters()
    rows = x.shape[0]
    engine._reserve(rows)
    work = engine._work
    samples = lambda buffer: buffer[:, :rows].T.copy()     # noqa: E731  slot-major -> [B, ·]
    work.w_parent[:] = w[engine.plan.parent_edge]
    it_f, err_f, norm_f, a = cpu_kernels._forward(plan, settings, work, x, w, b)
    out = dict(Y=samples(work.y[:plan.neuron_num]), A=samples(a))
    cpu_kernels._local_derivatives(plan, a, work.h, work.f, rows)
    out["H"] = samples(work.h)
    cpu_kernels._seed(plan, settings, work, x, rows)
    out["S"] = samples(work.delta)
    it_b, err_b, norm_b = cpu_kernels._backward(plan, settings, work, x, w, b, rows)
    out["D"] = samples(work.delta)
    cpu_kernels._assemble(plan, settings, work, w, rows)
    out.update(G_w=work.gw.copy(), G_b=work.gb.copy())
    whole = engine.gradient(x)      # the composed kernel: the same minibatch in one call
    solves = engine._step_solves(it_f, err_f, norm_f, it_b, err_b, norm_b)
    out.update(loss=whole.loss, forward=solves[0], backward=solves[1])
    assert (whole.forward, whole.backward) == solves
    np.testing.assert_array_equal(whole.weights, out["G_w"])
    return out


def gpu_stages(engine, x):
    cp = engine.cp
    rows = x.shape[0]
    w, b = engine.weights, engine.biases
    y, a, forward = engine._forward(cp.asarray(x), engine._weight_trans(w), b, rows)
    h = engine._local_derivatives(a, rows)
    s, loss = engine._seed(y, h, x, rows)
    seed = s.get().reshape(rows, -1)
    d, backward = engine._backward(s, h, w, rows)
    gw, gb = engine._assemble(d, y, w, rows)
    two_d = lambda v: v.get().reshape(rows, -1)     # noqa: E731
    return dict(Y=two_d(y), A=two_d(a), H=two_d(h), S=seed, D=two_d(d), G_w=gw.get(), G_b=gb.get(),
                loss=loss, forward=forward[0], backward=backward)


STAGE_RUNNERS = {"reference": reference_stages, "cpu": cpu_stages, "gpu": gpu_stages}


def close(got, want, what, exact):
    """Bit for bit (NaN where NaN), or the GPU's float32 tolerance relative to the largest value."""
    if hasattr(want, "iterations"):                                 # a Solve
        if exact:               # the report and the last iterate's max-norm (relative residual)
            assert got == want and np.array_equal(got.norm, want.norm, equal_nan=True), what
        else:
            assert abs(got.iterations - want.iterations) <= 1 and got.converged == want.converged, what
        return
    got, want = np.asarray(got), np.asarray(want)
    if exact:
        assert got.dtype == want.dtype, what
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    assert np.array_equal(np.isnan(got), np.isnan(want)), what
    scale = max(1.0, float(np.abs(want[~np.isnan(want)]).max(initial=0.0)))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-4, atol=5e-5 * scale,
                               err_msg=what)


def same_stages(case, backend, x):
    reference, engine = engines(case, backend)
    want = reference_stages(reference, x)
    got = STAGE_RUNNERS[backend](engine, x)
    for name in STAGES:
        close(got[name], want[name], name, backend == "cpu")
    return reference, engine


def same_state(reference, engine, what):
    """Parameters and the whole OptimizerState."""
    exact = engine.name.startswith("cpu")
    for name, got, want in zip(("weights", "biases"), engine.get_parameters(), reference.get_parameters()):
        close(got, want, f"{what} {name}", exact)
    got, want = engine.optimizer_state(), reference.optimizer_state()
    for name in ("v_w", "v_b", "m_w", "m_b", "u_w", "u_b", "betas"):
        close(getattr(got, name), getattr(want, name), f"{what} {name}", exact)


# -- one minibatch --------------------------------------------------------------------------------

@pytest.mark.parametrize("backend, seed", [("cpu", 1), ("cpu", 2), ("cpu", 3), ("cpu", 4), on_gpu(1)])
@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("loss", LOSSES)
def test_every_stage_for_every_loss(tmp_path, backend, seed, cyclic, loss):
    case = random_case(tmp_path, 10 * seed, cyclic, loss, neurons=12, io=3, max_inputs=3)
    same_stages(case, backend, data(7, 3, loss, seed))


@pytest.mark.nojit
@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("loss", ["MSE", "multiclassification_crossentropy"])
def test_every_stage_small(tmp_path, cyclic, loss):
    case = random_case(tmp_path, 5, cyclic, loss, neurons=8, io=2, max_inputs=2)
    same_stages(case, "cpu", data(5, 2, loss, 5))


@pytest.mark.parametrize("backend, cyclic", [("cpu", True), ("cpu", False), on_gpu(True)])
@pytest.mark.parametrize("kind", ALL_ACTIVATIONS + (7,))
def test_every_activation_id(tmp_path, backend, cyclic, kind):
    """One activation everywhere (inputs identity), 2-input neurons: products, H, derivatives."""
    case = random_case(tmp_path, 20 + kind, cyclic, neurons=10, io=2, max_inputs=2,
                       activations=(kind,), params=dict(maxiter_fix=30))
    same_stages(case, backend, data(5, 2, seed=kind))


@pytest.mark.parametrize("backend, batch", [("cpu", 5), ("cpu", 16), ("cpu", 21), on_gpu(21)])
@pytest.mark.parametrize("family", ["v0", "v1", "v2"])
def test_paper_networks_in_vector_blocks(tmp_path, backend, family, batch):
    """Layers [5, 29, 13, 29, 5]: out-edge runs of 29 = 16 + 8 + 5 and 13 = 8 + 5 hit every block
    width of the gradient sums; batches 5, 16, 21 give partial, whole and mixed sample blocks."""
    case = paper_case(tmp_path, family, clipping=1, clipping_threshold=np.float32(0.01))
    same_stages(case, backend, data(batch, 5, seed=batch))


@pytest.mark.parametrize("batch", [40, 48])
@pytest.mark.parametrize("family", ["v0", "v1"])
def test_paper_sizes_in_tiles(tmp_path, family, batch):
    """The paper's (5;32;8) layers 8-32-16-8-16-32-8: layers of 32, 16 and 8 slots are tiles of 6,
    pairs and a rest of dense rows (tile sums of parents, of children and of the weight gradient);
    batches of 2½ and 3 sample blocks."""
    case = paper_case(tmp_path, family, layers=(5, 32, 8, 8))
    same_stages(case, "cpu", data(batch, 8, seed=batch))


@pytest.mark.nojit
def test_no_sweep_at_maxiter_fix_zero(tmp_path):
    """maxiter_fix 0: Y = 0, no sweep either way (§3.2); the solves say nothing was measured."""
    case = random_case(tmp_path, 60, neurons=8, io=2, params=dict(maxiter_fix=0))
    reference, _ = same_stages(case, "cpu", data(4, 2, seed=6))
    forward = reference.gradient(data(4, 2, seed=6)).forward
    assert forward.iterations == 0 and not forward.converged and np.isnan(forward.residual)


def test_solves_cut_off_by_maxiter(tmp_path):
    """A tolerance no sweep reaches: both solves stop at maxiter_fix and say so, residual kept."""
    case = random_case(tmp_path, 61, neurons=10, io=2, params=dict(tol_fixit=np.float32(0.0), maxiter_fix=4))
    reference, _ = same_stages(case, "cpu", data(4, 2, seed=7))
    result = reference.gradient(data(4, 2, seed=7))
    for solve in (result.forward, result.backward):
        assert solve.iterations == 4 and not solve.converged and solve.residual > 0


# -- training steps -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", EVERY)
@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("optimizer,nesterov", [(1, 0), (1, 1), (2, 0), (3, 0), (4, 0)])
def test_training_steps(tmp_path, backend, cyclic, optimizer, nesterov):
    """Six steps of 4 rows (the last minibatch short) with shared groups, frozen entries, L2 and
    clipping: StepStats, parameters and every optimiser moment after each step."""
    params = dict(optimizer=optimizer, nesterov=nesterov, grad_alpha=np.float32(0.05),
                  clipping_threshold=np.float32(0.05))
    case = random_case(tmp_path, 30 + optimizer, cyclic, neurons=12, io=3, max_inputs=2, params=params)
    reference, engine = engines(case, backend)
    x = data(23, 3, seed=optimizer)
    exact = backend == "cpu"
    for step in range(6):
        batch = x[4 * step:4 * step + 4]
        lr, beta1 = np.float32(0.05 if optimizer == 1 else 0.01), np.float32(0.9 - 0.01 * step)
        want, got = reference.train_step(batch, lr, beta1), engine.train_step(batch, lr, beta1)
        for name in ("loss", "maw", "mab", "forward", "backward"):
            close(getattr(got, name), getattr(want, name), f"step {step} {name}", exact)
        same_state(reference, engine, f"step {step}")
    w, frozen = engine.get_parameters()[0], ~engine.weight_trainable
    np.testing.assert_array_equal(w[frozen], case[3][frozen])          # frozen edges never move
    for group in engine.network.shared_weight_groups:
        if engine.weight_trainable[group].all():
            assert np.all(w[group] == w[group[0]])          # shared members move together


@pytest.mark.nojit
@pytest.mark.parametrize("optimizer,nesterov", [(1, 1), (2, 0)])
def test_training_step_small(tmp_path, optimizer, nesterov):
    params = dict(optimizer=optimizer, nesterov=nesterov)
    reference, engine = engines(random_case(tmp_path, 7, neurons=8, io=2, params=params), "cpu")
    for step in range(2):
        batch = data(3, 2, seed=step)
        want = reference.train_step(batch, np.float32(0.05), np.float32(0.9))
        got = engine.train_step(batch, np.float32(0.05), np.float32(0.9))
        assert got == want
        same_state(reference, engine, f"step {step}")


def test_optimizer_state_round_trips(tmp_path):
    """set_optimizer_state(optimizer_state()) continues bit for bit: all a resume needs."""
    case = random_case(tmp_path, 8, neurons=10, io=2, params=dict(optimizer=2))
    _, first = engines(case, "cpu")
    _, second = engines(case, "cpu")
    x = data(12, 2, seed=8)
    first.train_step(x[:4], np.float32(0.01), np.float32(0.9))
    second.set_parameters(*first.get_parameters())
    second.set_optimizer_state(first.optimizer_state())
    for engine in (first, second):
        engine.train_step(x[4:8], np.float32(0.01), np.float32(0.85))
    np.testing.assert_array_equal(first.get_parameters()[0], second.get_parameters()[0])
    assert first.optimizer_state().beta1t == np.float32(np.float32(0.9) * np.float32(0.85))


# -- predictions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", EVERY)
@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("loss", LOSSES)
def test_predictions_with_a_short_last_chunk(tmp_path, backend, cyclic, loss):
    """Chunks 8, 8, 7 are separate minibatches (batch-coupled stopping, engine Q3): outputs after the
    output transform and each chunk's solve."""
    reference, engine = engines(random_case(tmp_path, 40, cyclic, loss, neurons=12, io=3, max_inputs=3),
                                backend)
    x = data(23, 3, loss, 3)
    close(engine.predict(x, 8), reference.predict(x, 8), "predict", backend == "cpu")
    for chunk in range(3):
        close(engine.predict_solves[chunk], reference.predict_solves[chunk], f"chunk {chunk}",
              backend == "cpu")
    w, b = reference.get_parameters()
    with np.errstate(all="ignore"):
        assert reference.predict_solves[2] == reference.forward(x[16:], w, b)[2]


@pytest.mark.nojit
def test_prediction_small(tmp_path):
    reference, engine = engines(random_case(tmp_path, 41, neurons=8, io=2), "cpu")
    x = data(7, 2, seed=4)
    np.testing.assert_array_equal(engine.predict(x, 3), reference.predict(x, 3))
    assert [engine.predict_solves[c] for c in range(3)] == [reference.predict_solves[c] for c in range(3)]


def test_larger_minibatch_than_configured_grows_buffers(tmp_path):
    case = random_case(tmp_path, 50, neurons=10, io=2)       # mini_batch_size of the params is 4
    same_stages(case, "cpu", data(33, 2, seed=5))
    reference, engine = engines(case, "cpu")
    x = data(33, 2, seed=5)
    close(engine.predict(x, 33), reference.predict(x, 33), "predict", True)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("case_of", [
    lambda tmp_path: random_case(tmp_path, 42, neurons=12, io=3, max_inputs=3),
    lambda tmp_path: random_case(tmp_path, 43, False, neurons=12, io=3, max_inputs=3),
    lambda tmp_path: paper_case(tmp_path, "v1")], ids=["implicit", "levels", "paper-v1"])
def test_prediction_chunks_shared_among_workers(tmp_path, case_of, workers):
    """Chunks dealt round-robin to 2 or 3 work buffers (numba's threads run them at once where
    there are several): outputs and every chunk's solve are the reference's, bit for bit."""
    case = case_of(tmp_path)
    reference, engine = engines(case, "cpu")
    x = data(7 * 5 + 3, case[0].input_num, seed=workers)
    want = reference.predict(x, 5)
    w, b = engine.get_parameters()
    out = np.zeros((len(x), engine.plan.output_num), np.float32)
    iterations, residual = np.zeros(8, np.int64), np.zeros(8, np.float32)
    norm = np.zeros(8, np.float32)
    engine._call(cpu_kernels.predict, x, 5, w, b, out, iterations, residual, norm, rows=5,
                 workers=workers)
    close(out, want, "predict", True)
    got = engine._solves(iterations, residual, norm)
    for c in range(8):
        close(got[c], reference.predict_solves[c], f"chunk {c}", True)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has a single thread here")
def test_prediction_same_on_one_and_two_threads(tmp_path):
    """engine.predict with numba's pool at 1 and at 2 threads (thread_num): the same bits."""
    _, engine = engines(paper_case(tmp_path, "v1"), "cpu")
    x = data(16 * 9 + 5, 5, seed=9)
    threads = numba.get_num_threads()
    try:
        results = []
        for count in (1, 2):
            numba.set_num_threads(count)
            results.append((engine.predict(x, 16), list(engine.predict_solves)))
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


# -- the same kernels as plain Python -------------------------------------------------------------

@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already plain Python")
def test_kernels_run_as_plain_python():
    """The `nojit` tests again with NUMBA_DISABLE_JIT=1: every numba kernel as Python code."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "nojit",
                             str(Path(__file__))], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]
