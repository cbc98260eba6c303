"""`implicit-nn check`: summary of a hand-made network (inputs.md §4.11) and of a reference config."""

import dataclasses

import pytest

from conftest import require_reference
from implicit_nn.cli import main
from implicit_nn.params import read_params, write_params
from test_params import SIMPARAM_TEXT

# inputs.md §4.11: N = 5, I = O = 2, a self-loop on neuron 3's second input (cyclic)
EXAMPLE = {
    "graph": ["2 ### 3 1; 3 2; ### 1 ### 0", "1 ### 3 1; ### 1 ### 0",
              "3 ### 4 1; 5 1; 3 2; ### 2 ### 2 1", "0 ### ### 1 ### 0", "0 ### ### 1 ### 0"],
    "logic": ["1 1 ### 0", "0 ### 0", "1 1 1 ### 1 1", "### 1", "### 1"],
    "fixwb": ["### 0.0", "0.5 ### 0.0", "###", "###", "###"],
    "shared_w": ["2 ### 3 4 1; 3 5 1;"],
    "shared_b": ["2 ### 4 1; 5 1;"],
}


def base_params(tmp_path):
    path = tmp_path / "base.dat"
    path.write_text(SIMPARAM_TEXT)
    return read_params(path)


@pytest.fixture
def example(tmp_path):
    for kind, lines in EXAMPLE.items():
        (tmp_path / f"{kind}.dat").write_text("".join(line + " \n" for line in lines))
    (tmp_path / "train.csv").write_text("0.1 0.2\n0.3 0.4\n0.5 0.6\n0.7 0.8\n")
    (tmp_path / "valid.csv").write_text("0.1 0.2 0\n0.3 0.4 1\n0.5 0.6 0\n")
    (tmp_path / "test.csv").write_text("0.1 0.2 1\n0.3 0.4 1\n")
    params = dataclasses.replace(
        base_params(tmp_path), neuron_num=5, input_num=2, output_num=2, learn_num=4,
        valid_num=3, test_num=2, mini_batch_size=2, sfreq=1, shared_weights_num=1,
        shared_biases_num=1, ff_optimization=0,
        input_name=str(tmp_path / "train.csv"), input_name_valid=str(tmp_path / "valid.csv"),
        input_name_test=str(tmp_path / "test.csv"),
        **{f"{kind}_datas": str(tmp_path / f"{kind}.dat") for kind in EXAMPLE})

    def write(**changes):
        path = tmp_path / "simulparams.dat"
        write_params(path, dataclasses.replace(params, **changes))
        return str(path)
    return write


def test_example_summary(example, capsys):
    path = example()
    assert main(["check", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"Parameters:         {path}",
        "Neurons:            5 (2 input, 2 output)",
        "Inputs (slots):     6",
        "Edges:              6",
        "Trainable:          9 (5 weights, 4 biases)",
        "Fixed:              1 weights, 2 biases",
        "Shared groups:      1 weight, 1 bias",
        "Graph:              cyclic (implicit; fixed-point iteration)",
        f"Training data:      4 rows ({path[:-len('simulparams.dat')]}train.csv)",
        f"Validation data:    3 rows, 1 positive ({path[:-len('simulparams.dat')]}valid.csv)",
        f"Test data:          2 rows, 2 positive ({path[:-len('simulparams.dat')]}test.csv)",
    ]


def test_ff_optimization_on_a_cyclic_graph_is_an_error(example, capsys):
    path = example(ff_optimization=1)
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "graph.dat: ff_optimization > 0 needs an acyclic graph" in err


def test_ff_optimization_on_an_edgeless_graph_is_an_error(example, tmp_path, capsys):
    # training refuses it (the original's backward countdown never ends, engine Q13), so check must too
    (tmp_path / "graph.dat").write_text("0 ### ### 1 ### 0 \n" * 5)
    (tmp_path / "logic.dat").write_text("### 1 \n" * 5)
    (tmp_path / "fixwb.dat").write_text("### \n" * 5)
    edgeless = dict(shared_weights_num=0, shared_biases_num=0)
    assert main(["check", example(**edgeless)]) == 0
    assert "acyclic, PERT depth 0 (fixed-point iteration)" in capsys.readouterr().out
    assert main(["check", example(ff_optimization=1, **edgeless)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "graph.dat: ff_optimization > 0 needs at least one edge" in err


def test_bad_data_line_and_bad_parameter(example, tmp_path, capsys):
    (tmp_path / "test.csv").write_text("0.1 0.2 1\n0.3 1\n")
    assert main(["check", example()]) == 1
    assert capsys.readouterr().err == (f"implicit-nn: error: {tmp_path / 'test.csv'}:2: row 2 has "
                                       "2 values, expected 3 (2 features and a label)\n")
    assert main(["check", example(output_num=3)]) == 1
    assert "output_num (3) must equal input_num (2)" in capsys.readouterr().err


def test_reference_v0_config(tmp_path, capsys):
    ref = require_reference()
    cfg = ref / "configs" / "v0"
    tag = "v0_M5_S32_L8-I8"
    params = dataclasses.replace(
        base_params(tmp_path),
        input_name=str(ref / "data/htru2smote_train.csv"),
        input_name_valid=str(ref / "data/htru2smote_valid.csv"),
        input_name_test=str(ref / "data/htru2_test.csv"),
        **{f"{kind}_datas": str(cfg / f"{kind}_autoencoder_{tag}.dat")
           for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b")})
    path = tmp_path / "simulparams.dat"
    write_params(path, params)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:8] == [
        "Neurons:            120 (8 input, 8 output)",
        "Inputs (slots):     120",
        "Edges:              1792",
        "Trainable:          1904 (1792 weights, 112 biases)",    # = the 1904 init draws (§7.6)
        "Fixed:              0 weights, 8 biases",
        "Shared groups:      0 weight, 0 bias",
        "Graph:              acyclic, PERT depth 6 (feed-forward evaluation)",  # IF 6.00 in G1
    ]
    assert out[8].startswith("Training data:      13164 rows")
    assert out[9].startswith("Validation data:    2929 rows, 1452 positive")
    assert out[10].startswith("Test data:          1790 rows, 172 positive")


def test_shared_counts_above_the_groups_in_the_file(example, capsys):
    """inputs Q12 (file shorter than the count) is accepted; check says how many groups were read, and a
    count of 2^64 - 1 does not make it loop over empty groups."""
    path = example(shared_weights_num=2**64 - 1, shared_biases_num=3)
    assert main(["check", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[6] == ("Shared groups:      1 weight (of shared_weights_num 18446744073709551615: "
                      "the file holds 1, the others are empty), 1 bias (of shared_biases_num 3: "
                      "the file holds 1, the others are empty)")
