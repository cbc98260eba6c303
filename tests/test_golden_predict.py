"""Published load-mode predictions of the original, recomputed by the numba engine (engine.md §13.5).

Every model of reference/inference: config + the backup that run loaded, then the validation and
test files in minibatches of 16. v0 (PERT path) and v1 (implicit, CUDA's atanf) must print
identically (%f); v2 agrees within 2e-5 (mean 2e-6): 6 of its 12 runs print identically, the
others differ in 8-16 % of the printed values, by at most 1.1e-5. All 36 runs take ~20 s.
"""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REFERENCE, require_reference
from implicit_nn.backup import load_backup
from implicit_nn.data import read_labeled
from implicit_nn.engine import make_engine
from implicit_nn.network import read_network

MODELS = [f"{family}_{size}" for family in ("v0", "v1", "v2")
          for size in ("5_32_8", "5_32_16", "5_64_8", "5_64_16", "7_64_8", "7_64_16")]
VALID_ROWS, TEST_ROWS = 2929, 1790


def tag(model):
    """v1_5_32_8 → v1_M5_S32_L8-I8 (the file-name tag of the reference runs)."""
    family, hidden, first, latent = model.split("_")
    return f"{family}_M{hidden}_S{first}_L{latent}-I8"


def model_params(model, reference=REFERENCE):
    """The settings of the published runs that the engine and the readers need."""
    family, t = model.split("_")[0], tag(model)
    cfg = Path(reference) / "configs" / family
    graph = cfg / f"graph_autoencoder_{t}.dat"
    return SimpleNamespace(
        neuron_num=graph.read_text().count("\n"), input_num=8, output_num=8,
        shared_weights_num=0, shared_biases_num=0, graph_datas=str(graph),
        logic_datas=str(cfg / f"logic_autoencoder_{t}.dat"),
        fixwb_datas=str(cfg / f"fixwb_autoencoder_{t}.dat"),
        shared_w_datas=str(cfg / f"shared_w_autoencoder_{t}.dat"),
        shared_b_datas=str(cfg / f"shared_b_autoencoder_{t}.dat"),
        tol_fixit=np.float32(1e-5), maxiter_fix=50, mini_batch_size=16, alpha=np.float32(1e-4),
        train_lossfunction_type="MSE", optimizer=1, nesterov=1, grad_alpha=np.float32(0.01),
        adam_alpha=np.float32(1e-3), adam_beta1=np.float32(0.9), adam_beta2=np.float32(0.999),
        adam_eps=np.float32(1e-8), clipping=0, clipping_threshold=np.float32(1.0),
        ff_optimization=1 if family == "v0" else 0)


def loaded_engine(model, run, backend="cpu", reference=REFERENCE):
    """An engine holding the weights the published load-mode run `run` loaded."""
    params = model_params(model, reference)
    network = read_network(params)
    engine = make_engine(network, params, backend)
    backup = Path(reference) / "inference" / model / f"backup_best_autoencoder_{tag(model)}_{run}.dat"
    w, b, *_ = load_backup(backup, network)
    engine.set_parameters(*network.apply_fixed(w, b))
    return engine


@pytest.mark.parametrize("run", [1, 2])
@pytest.mark.parametrize("model", MODELS)
def test_published_predictions(model, run):
    reference = require_reference()
    engine = loaded_engine(model, run, reference=reference)
    folder = reference / "inference" / model
    for split, name, rows in (("valid", "htru2smote_valid.csv", VALID_ROWS),
                              ("test", "htru2_test.csv", TEST_ROWS)):
        x, _ = read_labeled(reference / "data" / name, rows, 8)
        got = engine.predict(x, 16)
        want = np.loadtxt(folder / f"predict_{split}_{tag(model)}_{run}.dat", dtype=np.float64, ndmin=2)
        assert got.shape == want.shape
        if not model.startswith("v2"):
            printed = np.char.mod("%f", got.astype(np.float64))
            same = printed == np.char.mod("%f", want)
            assert same.all(), f"{split}: {(~same).sum()} printed values differ, first at {np.argwhere(~same)[0]}"
        else:
            diff = np.abs(got - want)
            assert diff.max() <= 2e-5, f"{split}: max |Δ| {diff.max():.3g}"
            assert diff.mean() <= 2e-6, f"{split}: mean |Δ| {diff.mean():.3g}"
