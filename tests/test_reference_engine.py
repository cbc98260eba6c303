"""Reference engine (engine.md §3-§12) against finite differences, hand computations and itself."""
import numpy as np
import pytest

import netgen
from implicit_nn.engine import Solve, StepStats, make_engine
from implicit_nn.engine.reference import ReferenceEngine, max_abs
from implicit_nn.gradcheck import check_gradient, finite_differences

LOSSES = ("MSE", "MAE", "multiclassification_crossentropy", "multilabeling_crossentropy",
          "bce_multilabeling")
ALL_ACTIVATIONS = (0, 1, 2, 3, 4, 6, 8, 9, 10, 11)     # 7 (1/a) has a pole: tested in test_activations


def dict_replace(params, **changes):
    return netgen.SimpleNamespace(**{**vars(params), **changes})


def _data(rows, cols, loss="MSE", seed=0):
    x = np.random.default_rng(seed).uniform(0.1, 0.9, (rows, cols)).astype(np.float32)
    if loss == "multiclassification_crossentropy":     # the CE seed assumes Σ t = 1 (engine Q7)
        x = (x / x.sum(axis=1, keepdims=True)).astype(np.float32)
    return x


def _net(tmp_path, seed, loss="MSE", **options):
    overrides = dict(train_lossfunction_type=loss, alpha=np.float32(0.01))
    overrides.update(options.pop("params", {}))
    options.setdefault("simple_outputs", loss == "bce_multilabeling")
    net, params, spec = netgen.random_network(tmp_path, seed=seed, params_overrides=overrides, **options)
    w, b = netgen.random_parameters(net, seed)
    return net, params, spec, w, b


def test_generated_files_read_back_as_generated(tmp_path):
    """The generator's own CSR arrays equal what read_network makes of its files."""
    net, _, spec, _, _ = _net(tmp_path, 3, neurons=10, io=3, max_inputs=3, shared_weight_groups=2)
    for name, want in netgen.derived_arrays(spec).items():
        got = getattr(net, name)
        if isinstance(want, tuple):
            assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want)), name
        else:
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("seed", [1, 2])
def test_adjoint_matches_finite_differences_cyclic(tmp_path, loss, seed):
    net, params, _, w, b = _net(tmp_path, seed, loss, neurons=10, io=3, max_inputs=3,
                                activations=ALL_ACTIVATIONS)
    worst_w, worst_b = check_gradient(net, params, w, b, _data(5, 3, loss, seed))
    assert worst_w.error < 1e-4, worst_w
    assert worst_b.error < 1e-4, worst_b


@pytest.mark.parametrize("loss", LOSSES)
def test_adjoint_matches_finite_differences_levels(tmp_path, loss):
    net, params, spec, w, b = _net(tmp_path, 4, loss, neurons=10, io=3, cyclic=False, max_inputs=3,
                                   activations=ALL_ACTIVATIONS, params=dict(ff_optimization=1))
    engine = ReferenceEngine(net, params, netgen.levels_of(spec))
    x = _data(5, 3, loss, 4)
    _, gw, gb, forward, backward = engine.gradient(x, w, b)
    fw, fb = finite_differences(net, params, engine.levels, w, b, x)
    scale = max(np.abs(fw).max(), np.abs(fb).max())
    tw, tb = engine.weight_trainable, engine.bias_trainable    # differences only move trainables
    np.testing.assert_allclose(gw[tw], fw[tw], rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(gb[tb], fb[tb], rtol=1e-4, atol=1e-5 * scale)
    depth = engine.levels.dist_max
    assert (forward, backward) == (Solve(depth, True, 0.0), Solve(depth - 1, True, 0.0))


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_implicit_and_level_paths_agree_on_acyclic_graphs(tmp_path, seed):
    net, params, spec, w, b = _net(tmp_path, seed, neurons=12, io=3, cyclic=False, max_inputs=3,
                                   params=dict(tol_fixit=np.float32(0.0), maxiter_fix=100))
    levels = netgen.levels_of(spec)
    x = _data(6, 3, seed=seed)
    implicit = ReferenceEngine(net, params)
    ff = ReferenceEngine(net, params, levels)
    y_i, _, solve_i = implicit.forward_implicit(x, w, b)
    y_f, _, solve_f = ff.forward_levels(x, w, b)
    # no input neuron has parents here, so (x̂+Σ)+b and (x̂+b)+Σ round alike (engine Q12)
    np.testing.assert_array_equal(y_i, y_f)
    # §3.3: bit-identical iterates after D+2 evaluations (earlier if a change rounds away); engine Q13
    assert solve_i.iterations <= levels.dist_max + 2 and solve_f.iterations == levels.dist_max
    assert solve_i.converged and solve_i.residual == 0.0     # tol 0: only an exact fixed point stops
    loss_i, gw_i, gb_i, _, _ = implicit.gradient(x, w, b)
    loss_f, gw_f, gb_f, _, _ = ff.gradient(x, w, b)
    assert loss_i == loss_f
    np.testing.assert_allclose(gw_i, gw_f, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gb_i, gb_f, rtol=1e-5, atol=1e-7)


def test_first_iterate_has_no_bias_and_outputs_lag(tmp_path):
    """itmax 1: Y = F(x̂) (engine Q2), so outputs without data see a = 0; the loss uses that Y (engine Q1)."""
    net, params, spec, w, b = _net(tmp_path, 8, neurons=8, io=2, params=dict(maxiter_fix=1))
    engine = ReferenceEngine(net, params)
    x = _data(3, 2)
    y, a, solve = engine.forward_implicit(x, w, b)
    assert solve.iterations == 1 and not solve.converged and solve.residual > params.tol_fixit
    for r, neuron in enumerate(range(net.neuron_num - 2, net.neuron_num)):
        want = np.prod([engine.act(np.int64(k), np.float32(0.0)) for k in spec.slots[neuron]])
        np.testing.assert_array_equal(y[:, neuron], np.float32(want))
    loss = engine.gradient(x, w, b)[0]
    diff = y[:, -2:] - x
    assert loss == np.float32(np.float32(np.sum(diff.astype(np.float64) ** 2)) / np.float32(3)) or \
        abs(loss - np.sum(diff.astype(np.float64) ** 2) / 3) < 1e-6


def test_solves_report_maxiter_and_the_last_residual(tmp_path):
    """A solve cut off by maxiter_fix says so, with the max-norm of its last sweep (both ways)."""
    net, params, _, w, b = _net(tmp_path, 9, neurons=9, io=2,
                                params=dict(tol_fixit=np.float32(1e-12), maxiter_fix=3))
    engine = ReferenceEngine(net, params)
    x = _data(4, 2, seed=2)
    _, a2, _ = ReferenceEngine(net, dict_replace(params, maxiter_fix=2)).forward_implicit(x, w, b)
    _, a3, forward = engine.forward_implicit(x, w, b)
    assert forward == Solve(3, False, max_abs(a3 - a2))
    assert forward.norm == max_abs(a3) and forward.relative == forward.residual / forward.norm
    backward = engine.gradient(x, w, b).backward
    assert backward.iterations == 3 and not backward.converged and backward.residual > 1e-12
    # the adjoint's last iterate is δ = S + T1 + T2 + T3, its last change T3
    assert backward.norm >= backward.residual and 0 < backward.relative < 1


def test_stopping_is_one_max_norm_for_the_whole_minibatch(tmp_path):
    net, params, _, w, b = _net(tmp_path, 9, neurons=9, io=2, params=dict(tol_fixit=np.float32(1e-4)))
    engine = ReferenceEngine(net, params)
    x = _data(6, 2, seed=3)
    together = engine.forward_implicit(x, w, b)[2].iterations
    alone = [engine.forward_implicit(x[i:i + 1], w, b)[2].iterations for i in range(6)]
    assert together == max(alone)


def test_l2_on_every_edge_and_clipping(tmp_path):
    net, params, _, w, b = _net(tmp_path, 10, neurons=9, io=2, params=dict(alpha=np.float32(0.0)))
    x = _data(4, 2)
    _, gw0, gb0, _, _ = ReferenceEngine(net, params).gradient(x, w, b)
    params.alpha = np.float32(0.05)
    _, gw1, gb1, _, _ = ReferenceEngine(net, params).gradient(x, w, b)
    want = (gw0.astype(np.float64) + 2.0 * np.float64(np.float32(0.05)) * w).astype(np.float32)
    np.testing.assert_array_equal(gw1, want)                                   # frozen edges too (engine Q18)
    np.testing.assert_array_equal(gb1, gb0)                                    # biases never
    theta = np.float32(0.5 * np.abs(gw1).max())
    params.clipping, params.clipping_threshold = 1, theta
    _, gw2, gb2, _, _ = ReferenceEngine(net, params).gradient(x, w, b)
    np.testing.assert_array_equal(gw2, np.clip(gw1, -theta, theta))
    np.testing.assert_array_equal(gb2, np.clip(gb1, -theta, theta))


def _step_engine(tmp_path, **param_changes):
    net, params, _, w, b = _net(tmp_path, 11, neurons=9, io=2, shared_weight_groups=1,
                                shared_bias_groups=1, params=param_changes)
    engine = ReferenceEngine(net, params)
    engine.set_parameters(w, b)
    return engine, net, params


def _shared(net, gw, gb):
    gw, gb = gw.copy(), gb.copy()
    for groups, g in ((net.shared_weight_groups, gw), (net.shared_bias_groups, gb)):
        for members in groups:
            total = np.float32(0.0)
            for m in members:
                total = np.float32(total + g[m])
            g[members] = total
    return gw, gb


@pytest.mark.parametrize("nesterov", [0, 1])
def test_sgd_step_by_hand(tmp_path, nesterov):
    engine, net, params = _step_engine(tmp_path, optimizer=1, nesterov=nesterov,
                                       adam_beta1=np.float32(0.8))
    rng = np.random.default_rng(0)
    state = engine.optimizer_state()
    state.v_w[:] = rng.uniform(-0.1, 0.1, state.v_w.size).astype(np.float32)
    state.v_b[:] = rng.uniform(-0.1, 0.1, state.v_b.size).astype(np.float32)
    engine.set_optimizer_state(state)
    w0, b0 = engine.get_parameters()
    v_w0, v_b0 = state.v_w, state.v_b
    x, lr, beta1 = _data(4, 2), np.float32(0.05), np.float32(0.9)
    tw, tb = w0.copy(), b0.copy()
    if nesterov:        # look-ahead with the BASE momentum 0.8, trainable entries only (engine Q14)
        tw = np.where(engine.weight_trainable, w0 + np.float32(0.8) * v_w0, w0).astype(np.float32)
        tb = np.where(engine.bias_trainable, b0 + np.float32(0.8) * v_b0, b0).astype(np.float32)
    loss, gw, gb, _, _ = engine.gradient(x, tw, tb)
    maw, mab = np.abs(gw).max(), np.abs(gb).max()
    gw, gb = _shared(net, gw, gb)
    stats = engine.train_step(x, lr, beta1)
    forward, backward = engine.gradient(x, tw, tb)[3:]
    assert stats == StepStats(loss, maw, mab, forward, backward)
    after = engine.optimizer_state()
    for p0, v0, g, mask, p1, v1 in ((w0, v_w0, gw, engine.weight_trainable, *engine.get_parameters()[:1], after.v_w),
                                     (b0, v_b0, gb, engine.bias_trainable, engine.get_parameters()[1], after.v_b)):
        v_new = beta1.astype(np.float64) * v0 - lr.astype(np.float64) * g
        np.testing.assert_allclose(v1, v_new, rtol=1e-6, atol=1e-9)         # every entry (engine Q15)
        step = beta1 * v_new - lr * g if nesterov else v_new
        np.testing.assert_allclose(p1[mask], (p0 + step)[mask], rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(p1[~mask], p0[~mask])


@pytest.mark.parametrize("optimizer", [2, 3])
def test_adam_and_adamax_two_steps_by_hand(tmp_path, optimizer):
    engine, net, params = _step_engine(tmp_path, optimizer=optimizer, adam_beta2=np.float32(0.99),
                                       adam_eps=np.float32(1e-8))
    x = _data(4, 2)
    beta2, eps = 0.99, 1e-8
    w, b = [p.astype(np.float64) for p in engine.get_parameters()]
    state = {k: [np.zeros(w.size), np.zeros(b.size)] for k in "mvu"}
    b1t, b2t = 1.0, 1.0
    for step, (lr, beta1) in enumerate(((0.01, 0.9), (0.02, 0.85))):
        _, gw, gb, _, _ = engine.gradient(x)
        gw, gb = _shared(net, gw, gb)
        engine.train_step(x, np.float32(lr), np.float32(beta1))
        b1t *= beta1
        b2t *= beta2
        for i, (p, g, mask) in enumerate(((w, gw, engine.weight_trainable), (b, gb, engine.bias_trainable))):
            g = g.astype(np.float64)
            m = state["m"][i] = beta1 * state["m"][i] + (1 - beta1) * g
            if optimizer == 2:
                v = state["v"][i] = beta2 * state["v"][i] + (1 - beta2) * g * g
                new = p - lr * (m / (1 - b1t)) / (np.sqrt(v / (1 - b2t)) + eps)
            else:
                u = state["u"][i] = np.maximum(beta2 * state["u"][i], np.abs(g))
                new = p - lr / (1 - b1t) * m / (u + eps)
            p[mask] = new[mask]
        got_w, got_b = engine.get_parameters()
        np.testing.assert_allclose(got_w, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_b, b, rtol=1e-5, atol=1e-6)
        w, b = got_w.astype(np.float64), got_b.astype(np.float64)      # follow the float32 path
    assert engine.optimizer_state().beta1t == np.float32(np.float32(0.9) * np.float32(0.85))


def test_unknown_optimizer_changes_nothing(tmp_path):
    engine, _, _ = _step_engine(tmp_path, optimizer=7)
    w0, b0 = engine.get_parameters()
    engine.train_step(_data(4, 2), np.float32(0.1), np.float32(0.9))
    w1, b1 = engine.get_parameters()
    np.testing.assert_array_equal(w0, w1)
    np.testing.assert_array_equal(b0, b1)


@pytest.mark.parametrize("loss", LOSSES)
def test_predict_chunks_and_output_transform(tmp_path, loss):
    net, params, _, w, b = _net(tmp_path, 12, loss, neurons=9, io=3)
    engine = ReferenceEngine(net, params)
    engine.set_parameters(w, b)
    x = _data(7, 3, loss)
    pred = engine.predict(x, 3)
    assert pred.shape == (7, 3) and pred.dtype == np.float32
    for start in (0, 3, 6):        # chunks are separate minibatches (engine Q3)
        y, _, _ = engine.forward(x[start:start + 3], w, b)
        raw = y[:, -3:]
        if loss == "multiclassification_crossentropy":
            want = np.exp(raw - raw.max(1, keepdims=True))
            want /= want.sum(1, keepdims=True)
            np.testing.assert_allclose(pred[start:start + 3], want, rtol=1e-6)
        elif loss == "bce_multilabeling":
            np.testing.assert_allclose(pred[start:start + 3], 1 / (1 + np.exp(-raw.astype(np.float64))), rtol=1e-6)
        else:
            np.testing.assert_array_equal(pred[start:start + 3], raw)


def test_make_engine_reference_and_bad_backend(tmp_path):
    from implicit_nn.errors import InputError
    net, params, _, _, _ = _net(tmp_path, 13, neurons=8, io=2)
    assert make_engine(net, params, "reference").name == "reference"
    with pytest.raises(InputError):
        make_engine(net, params, "quantum")


def test_make_engine_refuses_cycles_in_level_mode(tmp_path):
    pytest.importorskip("implicit_nn.levels")
    from implicit_nn.errors import InputError
    net, params, _, _, _ = _net(tmp_path, 14, neurons=8, io=2, params=dict(ff_optimization=1))
    with pytest.raises(InputError, match="cycle"):
        make_engine(net, params, "reference")


def test_softmax_rounds_as_the_c_library():
    """The host softmax of §12 with the C library's float32 expf/logf (numpy's float32 exp rounds
    differently on about 40 % of inputs): max-shifted, sums in output order."""
    import ctypes
    import ctypes.util
    from implicit_nn.engine.losses import MULTICLASS_CE, output_transform
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    for name in ("expf", "logf"):
        getattr(libm, name).restype, getattr(libm, name).argtypes = ctypes.c_float, [ctypes.c_float]
    y = np.random.default_rng(3).normal(0, 3, (200, 5)).astype(np.float32)
    want = np.zeros_like(y)
    for d, row in enumerate(y):
        shifted = [np.float32(v - row.max()) for v in row]
        total = np.float32(0.0)
        for v in shifted:
            total = np.float32(total + np.float32(libm.expf(v)))
        log_total = np.float32(libm.logf(total))
        want[d] = [libm.expf(np.float32(v - log_total)) for v in shifted]
    np.testing.assert_array_equal(output_transform(MULTICLASS_CE, y), want)
    assert not np.array_equal(np.exp(y), [[libm.expf(v) for v in row] for row in y])   # why it matters
