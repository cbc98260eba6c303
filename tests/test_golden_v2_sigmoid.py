"""v2 inference differs from the original only through ex2.approx (docs/compatibility.md, issue 16).

A v2 latent neuron multiplies its arctan input by σ(b) of a second input that no edge reaches, so
each σ(b) is one constant of the run. The device computes it with CUDA's expf, whose last step is
the hardware's undocumented ex2.approx (MUFU.EX2); the engines model that instruction by the
correctly rounded 2^r (cudamath.ex2_approx_ftz). In 15 of the 144 σ(b) of the published v2 load
runs the device's σ is one ulp away from ours. Given those values (the bias moved to the nearest
float32 whose σ is one ulp up or down), every printed prediction of all 12 runs and the final
metrics are the original's: the rest of the v2 forward path (two-input neurons, the product of
their activations, the implicit loop and its stop test) rounds as the device does.
"""

import re

import numpy as np
import pytest

from conftest import GOLDEN_BACKEND, require_reference
from implicit_nn.cli import main
from implicit_nn.engine.activations import sigmoid
from test_golden_load import final_row, historical_params, read_predictions, tag

# (model, run): {input slot (0-based, file order) of a sigmoid input: device σ − our σ in ulps},
# found greedily: each σ moved by ±1 ulp in turn, the move that left the fewest printed values
# different kept, until none differed (1-3 moves per run; issue 16).
DEVICE_SIGMA = {
    ("v2_5_32_8", 1): {}, ("v2_5_32_8", 2): {69: +1},
    ("v2_5_32_16", 1): {}, ("v2_5_32_16", 2): {61: +1, 81: -1, 85: -1},
    ("v2_5_64_8", 1): {111: -1, 117: +1}, ("v2_5_64_8", 2): {},
    ("v2_5_64_16", 1): {105: -1, 121: +1}, ("v2_5_64_16", 2): {129: -1},
    ("v2_7_64_8", 1): {127: -1, 129: -1}, ("v2_7_64_8", 2): {123: -1},
    ("v2_7_64_16", 1): {133: -1}, ("v2_7_64_16", 2): {131: -1, 145: +1},
}
_TOKEN = re.compile(r"\S+")


def bias_for_sigma(b, ulps):
    """The float32 nearest to b whose σ is `ulps` (±1) ulp away from σ(b)."""
    target = np.float32(sigmoid(b)).view(np.int32) + ulps
    x = b
    while np.float32(sigmoid(x)).view(np.int32) != target:
        x = np.nextafter(x, np.float32(ulps * np.inf), dtype=np.float32)
    return x


def with_device_sigma(text, network_slots, moves):
    """The backup text with the biases of `moves` replaced (the A biases precede th, mean, std)."""
    tokens = list(_TOKEN.finditer(text))
    first_bias = len(tokens) - 3 - network_slots
    for slot, ulps in sorted(moves.items(), reverse=True):
        token = tokens[first_bias + slot]
        b = bias_for_sigma(np.float32(token.group()), ulps)
        text = text[:token.start()] + repr(float(b)) + text[token.end():]
    return text


@pytest.mark.parametrize("model, run", sorted(DEVICE_SIGMA))
def test_v2_predictions_are_the_originals_given_the_device_sigma(model, run, tmp_path,
                                                                 monkeypatch):
    ref = require_reference()
    t = tag(model)
    graph = (ref / "configs" / "v2" / f"graph_autoencoder_{t}.dat").read_text()
    activations = [a for line in graph.splitlines() for a in line.split("###")[3].split()]
    assert {activations[slot] for slot in DEVICE_SIGMA[model, run]} <= {"1"}
    folder = ref / "inference" / model
    backup = tmp_path / "device_sigma_backup.dat"
    backup.write_text(with_device_sigma(
        (folder / f"backup_best_autoencoder_{t}_{run}.dat").read_text(), len(activations),
        DEVICE_SIGMA[model, run]))
    (tmp_path / "inputs").mkdir()
    (tmp_path / "outputs").mkdir()
    (tmp_path / "inputs" / "simulparams.dat").write_text(historical_params(
        model, run, "./outputs", maxiter_grad=0, loaddatas=1, load_backup="./outputs/x.dat"))
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--load", str(backup), "--quiet", "--backend", GOLDEN_BACKEND]) == 0
    out = tmp_path / "outputs"
    for kind in ("valid", "test"):
        ours = read_predictions(out / f"predict_{kind}_{t}_{run}.dat")
        theirs = read_predictions(folder / f"predict_{kind}_{t}_{run}.dat")
        assert np.array_equal(ours, theirs), kind
    ours = final_row(out / f"test_metrics_final_{t}_{run}.dat")
    theirs = final_row(folder / f"test_metrics_final_{t}_{run}.dat")
    assert {k: v for k, v in ours.items() if k != "ET"} == {
        k: v for k, v in theirs.items() if k != "ET"}
