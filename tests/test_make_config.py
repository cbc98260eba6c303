"""make-config: the paper's networks byte for byte (spec/inputs.md §8)."""

import itertools

import pytest

from implicit_nn.cli import main
from implicit_nn.tools.make_config import layer_sizes

from conftest import require_reference

SIZES = [(5, 32, 8), (5, 32, 16), (5, 64, 8), (5, 64, 16), (7, 64, 8), (7, 64, 16)]
# the reference v2 files carry the documented 3 -> 9 fix (reference/README.md)
ACT = {"v0": 3, "v1": 9, "v2": 9}


@pytest.mark.parametrize("family,size", list(itertools.product(("v0", "v1", "v2"), SIZES)))
def test_reference_configs_byte_identical(tmp_path, capsys, family, size):
    """The defaults (no --act-type) give the paper's files and say which activation they chose."""
    ref = require_reference() / "configs" / family
    m, s, lat = size
    rc = main(["make-config", "autoencoder", "--family", family, "--hidden-layer-num", str(m),
               "--start-layer", str(s), "--latent-num", str(lat), "--out", str(tmp_path)])
    assert rc == 0
    tag = f"{family}_M{m}_S{s}_L{lat}-I8"
    for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b"):
        name = f"{kind}_autoencoder_{tag}.dat"
        assert (tmp_path / name).read_bytes() == (ref / name).read_bytes(), name
    out = capsys.readouterr().out
    assert f"Neuron num: {sum(layer_sizes(m, s, lat, 8))}" in out
    assert out.startswith(f"Activation: {ACT[family]} (")


def test_explicit_act_type_is_used_silently(tmp_path, capsys):
    assert main(["make-config", "autoencoder", "--family", "v0", "--act-type", "9",
                 "--out", str(tmp_path)]) == 0
    assert not capsys.readouterr().out.startswith("Activation")
    graph = (tmp_path / "graph_autoencoder_v0_M5_S64_L8-I8.dat").read_text().splitlines()
    assert graph[8].endswith("### 1 ### 9 ")          # first hidden neuron: arctan


def test_layer_sizes_examples():
    assert layer_sizes(5, 32, 8, 8) == [8, 32, 16, 8, 16, 32, 8]
    assert layer_sizes(7, 64, 16, 117) == [117, 64, 32, 16, 16, 16, 32, 64, 117]
    assert sum(layer_sizes(7, 64, 16, 117)) == 474


def test_trainable_count_printed(tmp_path, capsys):
    main(["make-config", "autoencoder", "--family", "v2", "--hidden-layer-num", "5",
          "--start-layer", "32", "--latent-num", "8", "--input-num", "8", "--out", str(tmp_path)])
    # E = 1848 edges, A - I = 128 - 8 trainable biases (inputs.md §8.4)
    assert "Trainable parameters: 1968" in capsys.readouterr().out


@pytest.mark.parametrize("flag,value,expected", [
    ("--family", "v9", "--family must be one of"),
    ("--act-type", "12", "--act-type must be an activation id"),
    ("--latent-num", "0", "--latent-num must be a positive integer"),
])
def test_bad_arguments_one_line_error(tmp_path, capsys, flag, value, expected):
    rc = main(["make-config", "autoencoder", flag, value, "--out", str(tmp_path)])
    assert rc == 1
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
