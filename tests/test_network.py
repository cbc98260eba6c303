"""Network reader (inputs.md §4): the §4.11 worked example, reference configs, bad files."""

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from implicit_nn import network
from implicit_nn.errors import InputError
from implicit_nn.network import read_network
from implicit_nn.scan import Scanner
from netgen import derived_arrays, generate, params_for, write_files

from conftest import require_reference

EXAMPLE = {
    "graph.dat": "2 ### 3 1; 3 2; ### 1 ### 0\n1 ### 3 1; ### 1 ### 0\n"
                 "3 ### 4 1; 5 1; 3 2; ### 2 ### 2 1\n0 ### ### 1 ### 0\n0 ### ### 1 ### 0\n",
    "logic.dat": "1 1 ### 0\n0 ### 0\n1 1 1 ### 1 1\n### 1\n### 1\n",
    "fixwb.dat": "### 0.0\n0.5 ### 0.0\n###\n###\n###\n",
    "shared_w.dat": "2 ### 3 4 1; 3 5 1;\n",
    "shared_b.dat": "2 ### 4 1; 5 1;\n",
}


def example_params(folder, **files):
    """The §4.11 network written into folder (files overridable) and a Params stand-in."""
    folder = Path(folder)
    for name, text in {**EXAMPLE, **files}.items():
        (folder / name).write_text(text)
    return SimpleNamespace(
        neuron_num=5, input_num=2, output_num=2, shared_weights_num=1, shared_biases_num=1,
        graph_datas=str(folder / "graph.dat"), logic_datas=str(folder / "logic.dat"),
        fixwb_datas=str(folder / "fixwb.dat"), shared_w_datas=str(folder / "shared_w.dat"),
        shared_b_datas=str(folder / "shared_b.dat"), train_lossfunction_type="MSE")


def example_network(folder):
    return read_network(example_params(folder))


def test_worked_example_derived_arrays(tmp_path):
    net = example_network(tmp_path)
    expected = dict(
        neighbour_number=[2, 1, 3, 0, 0], bias_number=[1, 1, 2, 1, 1],
        first_ind_neighbour=[0, 2, 3, 6, 6], first_ind_bias=[0, 1, 2, 4, 5],
        graph_n=[2, 2, 2, 3, 4, 2], graph_i=[0, 1, 0, 0, 0, 1], graph_logic=[1, 1, 0, 1, 1, 1],
        activation_type=[0, 0, 2, 1, 0, 0], bias_logic=[0, 0, 1, 1, 1, 1],
        parent_number=[0, 0, 2, 2, 1, 1], first_ind_parent=[0, 0, 0, 2, 4, 5],
        graph_p=[0, 1, 0, 2, 2, 2], graph_p_ind_n=[0, 0, 1, 2, 0, 1],
        edge_source=[0, 0, 1, 2, 2, 2], edge_target=[2, 3, 2, 4, 5, 3],
        parent_edge=[0, 2, 1, 5, 3, 4], slot_owner=[0, 1, 2, 2, 3, 4],
    )
    for name, value in expected.items():
        array = getattr(net, name)
        assert array.dtype == np.int64, name
        assert array.tolist() == value, name
        assert not array.flags.writeable, name
    assert (net.neuron_num, net.input_num, net.output_num) == (5, 2, 2)
    assert (net.all_neighbour_num, net.all_input_num) == (6, 6)
    assert net.fix_weight.dtype == np.float32 and net.fix_weight.tolist() == [0, 0, 0.5, 0, 0, 0]
    assert net.fix_bias.dtype == np.float32 and net.fix_bias.tolist() == [0.0] * 6
    assert [g.tolist() for g in net.shared_weight_groups] == [[3, 4]]
    assert [g.tolist() for g in net.shared_bias_groups] == [[4, 5]]
    # the reversed graph gives each parent's flat weight index
    flat = net.first_ind_neighbour[net.graph_p] + net.graph_p_ind_n
    assert flat.tolist() == net.parent_edge.tolist()


def test_apply_fixed_copies_and_overwrites(tmp_path):
    net = example_network(tmp_path)
    w, b = np.arange(6, dtype=np.float32) + 1, np.arange(6, dtype=np.float32) + 1
    w2, b2 = net.apply_fixed(w, b)
    assert w2.tolist() == [1, 2, 0.5, 4, 5, 6] and b2.tolist() == [0, 0, 3, 4, 5, 6]
    assert w.tolist() == [1, 2, 3, 4, 5, 6]                 # inputs untouched


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_match_independent_derivation(tmp_path, seed):
    spec = generate(np.random.default_rng(seed), neurons=9, io=2, max_inputs=3,
                    shared_weight_groups=2, shared_bias_groups=2)
    write_files(spec, tmp_path)
    net = read_network(params_for(tmp_path, spec))
    for name, value in derived_arrays(spec).items():
        got = getattr(net, name)
        if isinstance(value, tuple):
            assert [g.tolist() for g in got] == [g.tolist() for g in value], name
        elif isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and np.array_equal(got, value), name
        else:
            assert got == value, name


# inputs.md §8.4: (N, E) per (M, S, Lat) for I = 8; E for v0, then v1/v2; A = N except v2
TABLE = {(5, 32, 8): (120, 1792, 1848, 128), (5, 32, 16): (128, 2048, 2288, 144),
         (5, 64, 8): (216, 5632, 5688, 224), (5, 64, 16): (224, 6144, 6384, 240),
         (7, 64, 8): (248, 6400, 6456, 256), (7, 64, 16): (256, 6656, 6896, 272)}


def reference_params(family, m, s, lat, **overrides):
    """Params stand-in for one reference config (shared files empty, counts 0 as in the runs)."""
    folder = require_reference() / "configs" / family
    name = f"autoencoder_{family}_M{m}_S{s}_L{lat}-I8.dat"
    values = dict(neuron_num=TABLE[(m, s, lat)][0], input_num=8, output_num=8,
                  shared_weights_num=0, shared_biases_num=0, train_lossfunction_type="MSE",
                  **{f"{kind}_datas": str(folder / f"{kind}_{name}")
                     for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b")})
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("family", ["v0", "v1", "v2"])
@pytest.mark.parametrize("shape", sorted(TABLE))
def test_reference_configs_parse(family, shape):
    n, e_v0, e_v12, a_v2 = TABLE[shape]
    net = read_network(reference_params(family, *shape))
    assert net.neuron_num == n
    assert net.all_neighbour_num == (e_v0 if family == "v0" else e_v12)
    assert net.all_input_num == (a_v2 if family == "v2" else n)
    assert net.first_ind_parent[-1] + net.parent_number[-1] == net.all_neighbour_num


def test_missing_shared_groups_are_empty(tmp_path):
    """inputs Q12: the empty generated shared file with a positive count (the v1 _wd script) is
    accepted; the missing groups would be empty, so only the groups in the file are kept."""
    params = reference_params("v1", 5, 64, 8, shared_weights_num=28, shared_biases_num=3)
    net = read_network(params)
    assert net.shared_weight_groups == () and net.shared_bias_groups == ()
    params = example_params(tmp_path)
    net = read_network(SimpleNamespace(**{**vars(params), "shared_weights_num": 3}))
    assert [g.tolist() for g in net.shared_weight_groups] == [[3, 4]]


def test_huge_shared_counts_cost_only_the_groups_in_the_file(tmp_path):
    """A count of 2^64 - 1 over a file of one group (or none) is read at once (it looped)."""
    params = example_params(tmp_path)
    huge = SimpleNamespace(**{**vars(params), "shared_weights_num": 2**64 - 1,
                              "shared_biases_num": 2**64 - 1})
    net = read_network(huge)
    assert [g.tolist() for g in net.shared_weight_groups] == [[3, 4]]
    assert [g.tolist() for g in net.shared_bias_groups] == [[4, 5]]


@pytest.mark.parametrize("value", [2**63, 2**63 + 1, 2**64 - 1])
def test_target_input_beyond_int64_is_the_usual_error(tmp_path, value):
    """Target inputs ≥ 2^63 overflowed int64 (a traceback, or a negative index in the message)."""
    params = example_params(tmp_path, **{"graph.dat": EXAMPLE["graph.dat"].replace(
        "1 ### 3 1;", f"1 ### 3 {value};", 1)})
    with pytest.raises(InputError) as info:
        read_network(params)
    assert (info.value.line, info.value.message) == (
        2, f"edge to input {value} of neuron 3, which has only 2 inputs")


def test_thousands_of_digits_are_the_usual_error(tmp_path):
    """Python's int-string limit (4300 digits) must not surface as a ValueError traceback."""
    params = example_params(tmp_path, **{"graph.dat": EXAMPLE["graph.dat"].replace(
        "1 ### 3 1;", "1 ### " + "9" * 5000 + " 1;", 1)})
    with pytest.raises(InputError) as info:
        read_network(params)
    assert info.value.line == 2
    assert info.value.message.startswith("expected the target neuron of edge 1 of neuron 2 "
                                         "(1 edges), found '" + "9" * 60 + "...'")


def test_shared_files_not_opened_when_count_is_zero(tmp_path):
    params = example_params(tmp_path, **{"shared_w.dat": "garbage", "shared_b.dat": "garbage"})
    net = read_network(SimpleNamespace(**{**vars(params), "shared_weights_num": 0,
                                          "shared_biases_num": 0}))
    assert net.shared_weight_groups == () and net.shared_bias_groups == ()


def test_shared_weight_lookup_takes_first_matching_edge(tmp_path):
    graph = EXAMPLE["graph.dat"].replace("3 ### 4 1; 5 1; 3 2;", "4 ### 4 1; 5 1; 4 1; 3 2;")
    logic = EXAMPLE["logic.dat"].replace("1 1 1 ### 1 1", "1 1 1 1 ### 1 1")
    net = read_network(example_params(tmp_path, **{"graph.dat": graph, "logic.dat": logic,
                                                   "shared_w.dat": "1 ### 3 4 1;"}))
    assert [g.tolist() for g in net.shared_weight_groups] == [[3]]
    assert net.parent_number.tolist() == [0, 0, 2, 2, 2, 1]


BAD = [
    # (file, replace this, by this, message pattern, line)
    ("graph.dat", "3 ### 4 1; 5 1; 3 2;", "3 ### 4 1; 6 1; 3 2;", r"target neuron 6 is outside 1\.\.5", 3),
    ("graph.dat", "1 ### 3 1;", "1 ### 0 1;", r"target neuron 0 is outside", 2),
    ("graph.dat", "1 ### 3 1;", "1 ### 3 0;", r"target input 0", 2),
    ("graph.dat", "1 ### 3 1;", "1 ### 4 2;", r"input 2 of neuron 4, which has only 1 inputs", 2),
    ("graph.dat", "2 ### 2 1", "2 ### 2 12", r"unknown activation id 12", 3),
    ("graph.dat", "0 ### ### 1 ### 0\n0", "0 ### ### 0 ### \n0", r"neuron 4 has no inputs", 4),
    ("graph.dat", "2 ### 3 1; 3 2; ###", "2 ### 3 1; 3 2 ###", r"expected ';' after edge 2 of neuron 1", 1),
    ("graph.dat", "2 ### 3 1; 3 2; ###", "2 ### 3 1; 3 2; 3 2; ###", r"expected '###' after the 2 edges of neuron 1", 1),
    ("graph.dat", "0 ### ### 1 ### 0\n", "", r"edge count of neuron 5 \(neuron_num = 5\), found end of file", 4),
    ("graph.dat", "1 ### 3 1;", "1.0 ### 3 1;", r"edge count of neuron 2", 2),
    ("logic.dat", "0 ### 0\n", "2 ### 0\n", r"logic value 2 for 1st edge of neuron 2", 2),
    ("logic.dat", "1 1 1 ### 1 1", "1 1 ### 1 1", r"logic value \(0/1\) for 3rd edge of neuron 3.*found '###'", 3),
    ("logic.dat", "1 1 1 ### 1 1", "1 1 1 1 ### 1 1", r"'###' after the 3 edge logic values of neuron 3", 3),
    ("logic.dat", "### 1\n### 1\n", "### 1\n### 1\n1\n", r"unexpected content after the 5 neurons", 6),
    ("fixwb.dat", "0.5 ### 0.0", "### 0.0", r"fixed value of the 1st edge of neuron 2", 2),
    ("fixwb.dat", "0.5 ### 0.0", "0.5 0.1 ### 0.0", r"'###' after the fixed edge values of neuron 2", 2),
    ("fixwb.dat", "0.5 ###", "x ###", r"fixed value of the 1st edge of neuron 2.*found 'x'", 2),
    ("shared_w.dat", "3 5 1;", "3 5 2;", r"Shared weight index problem: member 2 .* input 2 of neuron 5", 1),
    ("shared_w.dat", "3 4 1;", "9 4 1;", r"member 1 of shared weight group 1: neuron 9 is outside", 1),
    ("shared_w.dat", "\n", "\n1 ### 3 4 1;\n", r"unexpected content after the 1 shared weight groups", 2),
    ("shared_b.dat", "5 1;", "5 2;", r"neuron 5 has no input 2", 1),
    ("shared_b.dat", "4 1;", "0 1;", r"neuron 0 is outside", 1),
    ("shared_b.dat", "5 1;", "5 1", r"';' after member 2 of shared bias group 1", 1),
]


@pytest.mark.parametrize("name, old, new, message, line", BAD)
def test_bad_files_name_file_and_line(tmp_path, name, old, new, message, line):
    assert old in EXAMPLE[name]
    params = example_params(tmp_path, **{name: EXAMPLE[name].replace(old, new, 1)})
    with pytest.raises(InputError) as info:
        read_network(params)
    err = info.value
    assert err.path == str(tmp_path / name)
    assert err.line == line, str(err)
    assert re.search(message, err.message), str(err)


def _both_ways(params):
    """(_read_plain's lists or None, the scanners' lists or the InputError they raise)."""
    texts = [Path(getattr(params, f"{kind}_datas")).read_bytes().decode("latin-1")
             for kind in ("graph", "logic", "fixwb")]
    plain = network._read_plain(params.neuron_num, *texts)
    try:
        scanned = network._read_scanned(params.neuron_num, *(
            Scanner(getattr(params, f"{kind}_datas")) for kind in ("graph", "logic", "fixwb")))
    except InputError as exc:
        scanned = exc
    return plain, scanned


def _same_lists(a, b):
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name.startswith("fix_"):        # float32 values, compared bit for bit
            assert np.array(x, np.float32).tobytes() == np.array(y, np.float32).tobytes()
            assert [type(v) for v in x] == [type(v) for v in y]
        else:
            assert x == y, field.name


@pytest.mark.parametrize("family", ["v0", "v1", "v2"])
@pytest.mark.parametrize("shape", sorted(TABLE))
def test_plain_reading_equals_the_scanners_on_reference_configs(family, shape):
    plain, scanned = _both_ways(reference_params(family, *shape))
    assert plain is not None
    _same_lists(plain, scanned)


@pytest.mark.parametrize("seed", range(6))
def test_plain_reading_equals_the_scanners_on_random_networks(tmp_path, seed):
    spec = generate(np.random.default_rng(seed), neurons=12, io=3, cyclic=seed % 2 == 0)
    write_files(spec, tmp_path)
    plain, scanned = _both_ways(params_for(tmp_path, spec))
    assert plain is not None
    _same_lists(plain, scanned)
    plain, scanned = _both_ways(example_params(tmp_path))
    assert plain is not None and any(v == 0 for v in plain.graph_logic)
    _same_lists(plain, scanned)


@pytest.mark.parametrize("name, old, new, message, line", BAD)
def test_plain_reading_leaves_every_bad_file_to_the_scanners(tmp_path, name, old, new, message,
                                                             line):
    """A file the scanners refuse is never read the plain way; one they read (the error comes
    later, from the lists) gives the same lists."""
    plain, scanned = _both_ways(example_params(tmp_path, **{name: EXAMPLE[name].replace(old, new,
                                                                                          1)}))
    if isinstance(scanned, InputError):
        assert plain is None
    elif plain is not None:
        _same_lists(plain, scanned)


def test_bce_requires_plain_single_input_outputs(tmp_path):
    params = example_params(tmp_path)
    bce = SimpleNamespace(**{**vars(params), "train_lossfunction_type": "bce_multilabeling"})
    read_network(bce)                                       # neurons 4, 5: one input, act 0
    bad = SimpleNamespace(**{**vars(bce), "output_num": 3})  # neuron 3 has two inputs, edges
    with pytest.raises(InputError, match=r"Wrong activation function type on the output!.*"
                                         r"neuron 3") as info:
        read_network(bad)
    assert info.value.path == params.graph_datas and info.value.line == 3
    act = example_params(tmp_path, **{"graph.dat": EXAMPLE["graph.dat"][::-1].replace(
        "0", "1", 1)[::-1]})
    with pytest.raises(InputError, match="neuron 5"):
        read_network(SimpleNamespace(**{**vars(act), "train_lossfunction_type": "bce_multilabeling"}))


def test_missing_file_is_an_input_error(tmp_path):
    params = example_params(tmp_path)
    (tmp_path / "logic.dat").unlink()
    with pytest.raises(InputError, match="cannot read file") as info:
        read_network(params)
    assert info.value.path == params.logic_datas
