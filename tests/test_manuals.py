"""The manuals in docs/ match the code: generated blocks current, every parameter, activation and
log column described, the activation formulas equal to the engines', the hand-written network
example readable as written."""

import dataclasses
import re
import runpy

import numpy as np
import pytest

from implicit_nn.engine.activations import act_derivative64, act_value64
from implicit_nn.levels import is_cyclic
from implicit_nn.network import ACTIVATION_IDS, read_network
from implicit_nn.outputs import FINAL_COLUMNS, RESULTS_COLUMNS, TEST_COLUMNS
from implicit_nn.params import SCHEMA, read_params

from conftest import ROOT

DOCS = ROOT / "docs"
MANUALS = runpy.run_path(str(DOCS / "make_manuals.py"))


def test_generated_blocks_are_current(capsys):
    assert MANUALS["main"](["--check"]) == 0, capsys.readouterr().out


def test_every_parameter_documented_in_file_order():
    names = [name for name, _ in SCHEMA]
    assert set(MANUALS["MEANING"]) == set(names)
    assert set(MANUALS["ODD"]) <= set(names) and set(MANUALS["ACCEPTED"]) <= set(names)
    rows = re.findall(r"^\| (\d+) \| `(\w+)`", (DOCS / "parameters.md").read_text(), re.M)
    assert rows == [(str(k), name) for k, name in enumerate(names, start=1)]


def test_every_activation_documented_and_its_formulas_are_the_codes():
    table = MANUALS["ACTIVATIONS"]
    assert [row[0] for row in table] == list(ACTIVATION_IDS)
    a = np.array([-3.0, -1.0, -0.25, 0.3, 0.5, 2.0, 7.5])
    for ident, name, _, _, f_expr, d_expr in table:
        kinds = np.full(len(a), ident, dtype=np.int64)
        expected_f = eval(f_expr, {"np": np, "a": a})                 # noqa: S307 (our table)
        expected_d = eval(d_expr, {"np": np, "a": a})                 # noqa: S307
        np.testing.assert_allclose(act_value64(kinds, a), expected_f, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(act_derivative64(kinds, a), expected_d, rtol=1e-12,
                                   err_msg=name)
    text = (DOCS / "activations.md").read_text()
    assert all(f"\n| {ident} | " in text for ident in ACTIVATION_IDS)


def test_every_log_column_documented():
    columns = set(RESULTS_COLUMNS) | set(TEST_COLUMNS) | set(FINAL_COLUMNS)
    assert columns <= set(MANUALS["COLUMNS"])
    assert set(MANUALS["COLUMNS"]) <= columns                     # nothing stale either


def test_hand_written_network_example_reads_as_described(tmp_path):
    """The five files of file-formats.md's example, as written there: 4 neurons, 6 edges,
    5 inputs, 9 trained values, one group of each kind, a cycle."""
    text = (DOCS / "file-formats.md").read_text()
    blocks = dict(re.findall(r"<!-- example: (\w+) -->\n```\n(.*?)```", text, re.S))
    assert sorted(blocks) == ["fixwb", "graph", "logic", "shared_b", "shared_w"]
    for kind, body in blocks.items():
        (tmp_path / f"{kind}.dat").write_text(body)
    params = dataclasses.replace(
        read_params(ROOT / "inputs" / "simulparams.dat"), neuron_num=4, input_num=1,
        output_num=1, shared_weights_num=1, shared_biases_num=1,
        **{f"{kind}_datas": str(tmp_path / f"{kind}.dat") for kind in blocks})
    net = read_network(params)
    assert (net.neuron_num, net.all_neighbour_num, net.all_input_num) == (4, 6, 5)
    assert int(net.graph_logic.sum()) + int(net.bias_logic.sum()) == 9
    assert len(net.shared_weight_groups) == len(net.shared_bias_groups) == 1
    assert is_cyclic(net)
    assert list(net.activation_type) == [0, 2, 9, 1, 0]


@pytest.mark.parametrize("manual", ["parameters.md", "file-formats.md", "activations.md",
                                    "sweep.md"])
def test_manuals_are_linked_from_the_readme(manual):
    assert f"docs/{manual}" in (ROOT / "README.md").read_text()
