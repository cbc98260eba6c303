"""numba CPU engine held to the NumPy reference engine (engine.md §13.4 tolerances)."""
import numpy as np
import pytest

import netgen
from implicit_nn.engine.cpu import CpuEngine
from implicit_nn.engine.reference import ReferenceEngine
from implicit_nn.levels import pert_levels
from implicit_nn.network import read_network
from implicit_nn.tools.make_config import make_autoencoder

LOSSES = ("MSE", "MAE", "multiclassification_crossentropy", "multilabeling_crossentropy",
          "bce_multilabeling")
ALL_ACTIVATIONS = (0, 1, 2, 3, 4, 6, 8, 9, 10, 11)    # 7 (1/a) has a pole at 0; tested alone below


def _data(rows, cols, loss="MSE", seed=0):
    x = np.random.default_rng(seed).uniform(0.1, 0.9, (rows, cols)).astype(np.float32)
    if loss == "multiclassification_crossentropy":    # the CE seed assumes Σ t = 1 (Q7)
        x = (x / x.sum(axis=1, keepdims=True)).astype(np.float32)
    return x


def _pair(tmp_path, seed, cyclic=True, loss="MSE", params=None, **options):
    """(reference, cpu) engines on the same random network, both at the same random parameters."""
    overrides = dict(train_lossfunction_type=loss, alpha=np.float32(0.01), tol_fixit=np.float32(1e-6),
                     maxiter_fix=100)
    if not cyclic:
        overrides["ff_optimization"] = 1
    overrides.update(params or {})
    options.setdefault("simple_outputs", loss == "bce_multilabeling")
    options.setdefault("activations", ALL_ACTIVATIONS)
    net, prm, spec = netgen.random_network(tmp_path, seed=seed, params_overrides=overrides,
                                           cyclic=cyclic, **options)
    levels = None if cyclic else netgen.levels_of(spec)
    w, b = netgen.random_parameters(net, seed)
    engines = ReferenceEngine(net, prm, levels), CpuEngine(net, prm, levels)
    for engine in engines:
        engine.set_parameters(w, b)
    return engines


def _close(got, want, cyclic, what):
    """ff: |Δ| ≤ 1e−5 + 1e−5·|want|; implicit: |Δ| ≤ 5e−5 (relative to scale) and mean ≤ 1e−6·scale."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), what
    got, want = got[~np.isnan(want)], want[~np.isnan(want)]
    if not got.size:
        return
    scale = max(1.0, float(np.abs(want).max()))
    if cyclic:
        np.testing.assert_allclose(got, want, rtol=0, atol=5e-5 * scale, err_msg=what)
        assert np.abs(got - want).mean() <= 1e-6 * scale, what
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=what)


def _same_gradient(ref, cpu, x, cyclic):
    want = ref.gradient(x)
    got = cpu.gradient(x)
    _close(got[0], want[0], cyclic, "loss")
    scale = max(np.abs(want[1]).max(initial=0), np.abs(want[2]).max(initial=0), 1e-30)
    rel = 1e-4 if cyclic else 1e-5
    np.testing.assert_allclose(got[1], want[1], rtol=rel, atol=rel * scale, err_msg="G_w")
    np.testing.assert_allclose(got[2], want[2], rtol=rel, atol=rel * scale, err_msg="G_b")
    for name in ("forward", "backward"):
        g, w = getattr(got, name), getattr(want, name)
        if cyclic:
            assert abs(g.iterations - w.iterations) <= 1 and g.converged == w.converged, name
        else:
            assert g == w, name


@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_equals_reference_for_every_loss(tmp_path, loss, cyclic):
    ref, cpu = _pair(tmp_path, 11, cyclic, loss, neurons=14, io=3, max_inputs=3)
    _same_gradient(ref, cpu, _data(7, 3, loss, 1), cyclic)


@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("kind", ALL_ACTIVATIONS + (7,))
def test_every_activation_id(tmp_path, kind, cyclic):
    """One activation everywhere (inputs identity), 2-input neurons: products, H, derivatives."""
    ref, cpu = _pair(tmp_path, 20 + kind, cyclic, neurons=10, io=2, max_inputs=2,
                     activations=(kind,), params=dict(maxiter_fix=30))
    x = _data(5, 2, seed=kind)
    _same_gradient(ref, cpu, x, cyclic)
    _close(cpu.predict(x, 5), ref.predict(x, 5), cyclic, "predict")


@pytest.mark.parametrize("optimizer,nesterov", [(1, 0), (1, 1), (2, 0), (3, 0), (4, 0)])
@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
def test_train_steps_follow_reference(tmp_path, optimizer, nesterov, cyclic):
    """Several steps with shared groups, fixed entries, L2 and clipping: parameters stay together."""
    params = dict(optimizer=optimizer, nesterov=nesterov, clipping=1,
                  clipping_threshold=np.float32(0.05), grad_alpha=np.float32(0.05))
    ref, cpu = _pair(tmp_path, 30 + optimizer, cyclic, neurons=12, io=3, max_inputs=2,
                     shared_weight_groups=2, shared_bias_groups=2, params=params)
    x = _data(24, 3, seed=optimizer)
    for step in range(6):
        batch = x[4 * step:4 * step + 4]
        lr = np.float32(0.05 if optimizer == 1 else 0.01)
        want = ref.train_step(batch, lr, np.float32(0.9))
        got = cpu.train_step(batch, lr, np.float32(0.9))
        for name in ("loss", "maw", "mab"):
            _close(getattr(got, name), getattr(want, name), cyclic, f"step {step} {name}")
        assert abs(got.iter_forward - want.iter_forward) <= (1 if cyclic else 0)
        assert abs(got.iter_backward - want.iter_backward) <= (1 if cyclic else 0)
    (rw, rb), (cw, cb) = ref.get_parameters(), cpu.get_parameters()
    _close(cw, rw, cyclic, "weights")
    _close(cb, rb, cyclic, "biases")
    fixed_w = np.asarray(ref.network.graph_logic) == 0
    np.testing.assert_array_equal(cw[fixed_w], rw[fixed_w])          # frozen entries untouched
    for group in ref.network.shared_weight_groups:
        if np.all(np.asarray(ref.network.graph_logic)[group] == 1):
            assert np.all(cw[group] == cw[group[0]])               # shared groups move together
    _close(cpu.m_w, ref.m_w, cyclic, "first moment")
    _close(cpu.v_w, ref.v_w, cyclic, "velocity / second moment")
    assert cpu.beta1t == ref.beta1t and cpu.beta2t == ref.beta2t


@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("loss", ["MSE", "multiclassification_crossentropy", "bce_multilabeling"])
def test_predict_with_short_last_chunk(tmp_path, loss, cyclic):
    ref, cpu = _pair(tmp_path, 40, cyclic, loss, neurons=12, io=3, max_inputs=3)
    x = _data(23, 3, loss, 3)                      # chunks 8, 8, 7: batch-coupled stopping (Q3)
    _close(cpu.predict(x, 8), ref.predict(x, 8), cyclic, "predict")
    w, b = ref.get_parameters()
    chunks = [ref.forward(x[s:s + 8], w, b)[2] for s in (0, 8, 16)]
    assert [ref.predict_solves[c] for c in range(3)] == chunks       # each chunk's own solve
    got = cpu.predict_solves
    assert len(got) == 3 and np.array_equal(got.converged, ref.predict_solves.converged)
    assert np.abs(got.iterations - ref.predict_solves.iterations).max() <= (1 if cyclic else 0)


def test_larger_minibatch_than_configured_grows_buffers(tmp_path):
    ref, cpu = _pair(tmp_path, 50, True, neurons=10, io=2)
    x = _data(33, 2, seed=5)                       # mini_batch_size of the params is 4
    _same_gradient(ref, cpu, x, True)
    _close(cpu.predict(x, 33), ref.predict(x, 33), True, "predict")


def test_lagging_outputs_and_itmax_zero(tmp_path):
    """maxiter_fix 0: Y = 0, no sweep in either direction (§3.2), both engines alike."""
    ref, cpu = _pair(tmp_path, 60, True, neurons=8, io=2, params=dict(maxiter_fix=0))
    x = _data(4, 2, seed=6)
    want, got = ref.gradient(x), cpu.gradient(x)
    for solve in (want.forward, want.backward, got.forward, got.backward):   # nothing measured
        assert solve.iterations == 0 and not solve.converged and np.isnan(solve.residual)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(cpu.predict(x, 4), ref.predict(x, 4))


@pytest.mark.parametrize("batch", [5, 16, 21])
@pytest.mark.parametrize("family", ["v0", "v1"])
def test_dense_layers_in_vector_blocks(tmp_path, family, batch):
    """Layers [5, 29, 13, 29, 5]: out-edge runs of 29 = 16 + 8 + 5 and 13 = 8 + 5 hit every block
    width of the gradient sums; batches 5, 16, 21 give partial, whole and mixed sample blocks."""
    tag, layers, neurons, _ = make_autoencoder(tmp_path, family, 3, 29, 13, 5, 1)
    files = {f"{kind}_datas": str(tmp_path / f"{kind}_autoencoder_{tag}.dat")
             for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b")}
    cyclic = family == "v1"
    params = netgen.SimpleNamespace(**{**netgen.ENGINE_DEFAULTS, **files,
                                       "ff_optimization": int(not cyclic)},
                                    neuron_num=neurons, input_num=5, output_num=5,
                                    shared_weights_num=0, shared_biases_num=0)
    net = read_network(params)
    levels = None if cyclic else pert_levels(net)
    w, b = netgen.random_parameters(net, 3, scale=0.3)
    ref, cpu = ReferenceEngine(net, params, levels), CpuEngine(net, params, levels)
    for engine in (ref, cpu):
        engine.set_parameters(w, b)
    x = _data(batch, 5, seed=batch)
    _same_gradient(ref, cpu, x, cyclic)
    _close(cpu.predict(x, batch), ref.predict(x, batch), cyclic, "predict")
