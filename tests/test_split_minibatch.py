"""A training minibatch split among threads (cpu_kernels._split_gradient): bit for bit one thread.

From SPLIT_ROWS rows on (SPLIT_ROWS_LEVELS on the level path), the numba engine runs a minibatch's rows in parts of whole LANES blocks,
one work buffer and thread each, and joins them exactly: each fixed point stops at the sweep the
whole minibatch's NaN-aware max-norm stops at (parts that settled early sweep on to it), the
gradient sums and the loss run in sample order over all parts. Held here BIT FOR BIT to the
same engine on one work buffer (itself held to the reference by test_stages.py): losses, both
solves (iterations, residual, last iterate's norm), maw/mab, parameters and optimiser state
after each of several steps, on minibatches that split unevenly, parts that stop many sweeps
apart, maxiter, NaN rows, and numba's pool at 1 and 2 threads.
"""
from dataclasses import astuple

import numba
import numpy as np
import pytest

from implicit_nn.engine import cpu as cpu_engine, cpu_kernels, make_engine
from implicit_nn.engine.lanes import LANES
from implicit_nn.engine.packing import KernelPlan, KernelSettings
from test_stages import data, paper_case, random_case

F32 = np.float32


def steps(case, x, batch, workers, monkeypatch, solver=None, scale=1.0):
    """(Steps, parameters, optimiser state) of training on all of x in minibatches of `batch`
    rows, the engine given `workers` work buffers for a minibatch (numba's thread count as the
    engine reads it)."""
    net, prm, levels, w, b = case
    monkeypatch.setattr(cpu_engine.numba, "get_num_threads", lambda: workers)
    engine = make_engine(net, prm, "cpu", levels=levels, solver=solver)
    engine.set_parameters((w * F32(scale)).astype(F32), b)
    count = -(-len(x) // batch)
    lr = np.linspace(0.02, 0.01, count).astype(F32)
    beta1 = np.linspace(0.9, 0.8, count).astype(F32)
    with np.errstate(all="ignore"):
        got = engine.train_steps(x, 0, count, batch, lr, beta1)
    return got, engine.get_parameters(), engine.optimizer_state()


def bits(values):
    values = np.asarray(values)
    return values.dtype, values.shape, values.tobytes()


def assert_same_training(one, split):
    """Every figure of the steps and the state after them, bit for bit (NaNs included)."""
    (got_one, params_one, state_one), (got_split, params_split, state_split) = one, split
    for name in ("loss", "maw", "mab"):
        assert bits(getattr(got_split, name)) == bits(getattr(got_one, name)), name
    for side in ("forward", "backward"):
        for field in ("iterations", "converged", "residual", "norm"):
            want = getattr(getattr(got_one, side), field)
            assert bits(getattr(getattr(got_split, side), field)) == bits(want), (side, field)
    for got, want in zip(params_split, params_one):
        assert bits(got) == bits(want)
    for name in ("v_w", "v_b", "m_w", "m_b", "u_w", "u_b", "betas"):
        assert bits(getattr(state_split, name)) == bits(getattr(state_one, name)), name


def parts_of(network, params, batch, workers, solver=None):
    """cpu_kernels._parts: how many parts the engine splits a minibatch of `batch` rows into."""
    plan = make_engine(network, params, "cpu", solver=solver).plan
    kernel_plan = KernelPlan(*(getattr(plan, name) for name in KernelPlan._fields))
    return cpu_kernels._parts(kernel_plan, KernelSettings(*astuple(plan.settings)), batch, workers)


def split_rows(levels):
    return cpu_kernels.SPLIT_ROWS if levels is None else cpu_kernels.SPLIT_ROWS_LEVELS


def same_on_parts(case, x, batch, monkeypatch, workers=(2, 3), **options):
    one = steps(case, x, batch, 1, monkeypatch, **options)
    for count in workers:
        assert_same_training(one, steps(case, x, batch, count, monkeypatch, **options))
    return one


CASES = {
    "paper-v1": lambda tmp_path: paper_case(tmp_path, "v1", optimizer=1, nesterov=1),
    "paper-v2": lambda tmp_path: paper_case(tmp_path, "v2", optimizer=2),
    "paper-v0": lambda tmp_path: paper_case(tmp_path, "v0", optimizer=1, nesterov=1, clipping=1,
                                            clipping_threshold=F32(0.01)),
    "random-implicit": lambda tmp_path: random_case(tmp_path, 71, neurons=14, io=3, max_inputs=3,
                                                    params=dict(optimizer=3)),
    "random-levels": lambda tmp_path: random_case(tmp_path, 72, False, neurons=14, io=3,
                                                  max_inputs=3, params=dict(optimizer=2)),
    "random-implicit-ce": lambda tmp_path: random_case(
        tmp_path, 73, loss="multiclassification_crossentropy", neurons=14, io=3, max_inputs=3),
}


@pytest.mark.parametrize("batch", [128, 256, 259, 1027])
@pytest.mark.parametrize("name", sorted(CASES))
def test_split_minibatches_equal_one_thread(tmp_path, monkeypatch, name, batch):
    """Minibatches of 128, 256, 259 and 1027 rows (whole and uneven parts; the fixed point splits
    the last three, the level path the last) and a short last one, on 1, 2 and 3 work
    buffers."""
    case = CASES[name](tmp_path)
    assert (parts_of(case[0], case[1], batch, 2) == 2) == (batch >= split_rows(case[2]))
    loss = "multiclassification_crossentropy" if name.endswith("-ce") else "MSE"
    x = data(2 * batch + 37, case[0].input_num, loss, seed=batch)
    same_on_parts(case, x, batch, monkeypatch)


def part_iterations(case, rows, scale):
    """Forward and adjoint sweeps of `rows` as a minibatch of their own."""
    net, prm, levels, w, b = case
    engine = make_engine(net, prm, "cpu", levels=levels)
    engine.set_parameters((w * F32(scale)).astype(F32), b)
    result = engine.gradient(rows)
    return result.forward.iterations, result.backward.iterations


@pytest.mark.parametrize("scale, slow, fast, maxiter", [(1.5, 0.1, 100.0, 200),
                                                        (2.0, 1.0, 100.0, 120)])
@pytest.mark.parametrize("slow_first", [True, False])
def test_parts_that_stop_many_sweeps_apart(tmp_path, monkeypatch, scale, slow, fast, maxiter,
                                           slow_first):
    """Saturated rows (large inputs) settle much earlier than the others: the part that stops
    first sweeps on to where the whole minibatch stops (in the second case that is maxiter)."""
    case = paper_case(tmp_path, "v1", maxiter_fix=maxiter)
    fast_rows = np.tile(data(64, 5, seed=1) * F32(fast), (2, 1)).astype(F32)   # a part each
    slow_rows = np.tile(data(64, 5, seed=2) * F32(slow), (2, 1)).astype(F32)
    fast_sweeps, slow_sweeps = part_iterations(case, fast_rows, scale), \
        part_iterations(case, slow_rows, scale)
    assert fast_sweeps[0] + 10 <= slow_sweeps[0] and fast_sweeps[1] + 5 <= slow_sweeps[1]
    x = np.concatenate([slow_rows, fast_rows] if slow_first else [fast_rows, slow_rows])
    assert parts_of(case[0], case[1], 256, 2) == 2
    got = same_on_parts(case, x, 256, monkeypatch, workers=(2,), scale=scale)[0]
    assert got.forward.iterations[0] == slow_sweeps[0]
    assert (got.forward.iterations[0] == maxiter) == (maxiter == 120)


@pytest.mark.parametrize("tol, maxiter", [(0.0, 7), (1e-5, 0), (1e-5, 1)])
def test_parts_at_maxiter(tmp_path, monkeypatch, tol, maxiter):
    """A tolerance no sweep reaches, no sweep at all, one sweep: every part stops at maxiter."""
    case = paper_case(tmp_path, "v1", tol_fixit=F32(tol), maxiter_fix=maxiter)
    got = same_on_parts(case, data(600, 5, seed=4), 300, monkeypatch)[0]
    assert (got.forward.iterations == maxiter).all() and (got.backward.iterations == maxiter).all()


@pytest.mark.parametrize("where", ["rows of the second part", "the second part", "every row",
                                   "the first row"])
@pytest.mark.parametrize("family", ["v1", "v0"])
def test_nan_rows(tmp_path, monkeypatch, family, where):
    """NaN inputs in rows of the second part of two, in all of it (only the finite input slots
    change there, so it stops on its own after a few sweeps while the first sweeps on), in every
    row, in the first row only."""
    case = paper_case(tmp_path, family)
    batch = 259 if family == "v1" else 1027
    second = int(cpu_kernels._part_bounds(batch, 2)[1])
    rows = {"rows of the second part": [second + 10, second + 11],
            "the second part": list(range(second, batch)), "every row": list(range(batch)),
            "the first row": [0]}[where]
    x = data(batch, 5, seed=5)
    x[rows, 1] = np.nan
    assert parts_of(case[0], case[1], batch, 2) == 2
    got = same_on_parts(case, x, batch, monkeypatch)[0]
    assert np.isnan(got.loss[0])


@pytest.mark.parametrize("solver", ["anderson", "blocks"])
def test_other_solvers_keep_one_thread(tmp_path, monkeypatch, solver):
    """Anderson mixing and the block solver run a minibatch on one work buffer (_parts): the
    same results with more."""
    case = paper_case(tmp_path, "v1")
    assert parts_of(case[0], case[1], 256, 2, solver) == 1
    same_on_parts(case, data(300, 5, seed=6), 150, monkeypatch, workers=(2,), solver=solver)


@pytest.mark.parametrize("batch, parts", [(64, 2), (67, 2), (67, 3), (256, 3), (1000, 7)])
def test_parts_are_whole_lane_blocks(batch, parts):
    bounds = cpu_kernels._part_bounds(batch, parts)
    sizes = np.diff(bounds)
    assert bounds[0] == 0 and bounds[-1] == batch and (sizes > 0).all()
    blocks = -(-sizes // LANES)         # a part's cost: its blocks of LANES samples
    assert (bounds[:-1] % LANES == 0).all() and blocks.max() - blocks.min() <= 1


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has a single thread here")
def test_same_on_one_and_two_threads(tmp_path):
    """engine.train_steps with numba's pool at 1 and at 2 threads (thread_num): the same bits."""
    case = paper_case(tmp_path, "v1")
    net, prm, levels, w, b = case
    x = data(3 * 260 + 5, 5, seed=7)
    threads = numba.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            numba.set_num_threads(count)
            engine = make_engine(net, prm, "cpu", levels=levels)
            engine.set_parameters(w, b)
            lr = np.full(4, 0.01, F32)
            results.append((engine.train_steps(x, 0, 4, 260, lr, lr + F32(0.8)),
                            engine.get_parameters(), engine.optimizer_state()))
    finally:
        numba.set_num_threads(threads)
    assert_same_training(*results)
