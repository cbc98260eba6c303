"""The bundled example: its files are what make_data.py writes, and it trains.

The sweep files of examples/ are tested in test_sweep.py."""

import dataclasses
import runpy
from pathlib import Path

import numpy as np

from conftest import ROOT, example_params

SMALL = ROOT / "examples" / "small"


def test_small_example_files_are_what_make_data_writes(tmp_path):
    make_data = runpy.run_path(str(SMALL / "make_data.py"))
    make_data["write_example"](tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert Path("inputs/simulparams.dat") in written
    for rel in written:
        assert (ROOT / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_small_example_data_and_network():
    from implicit_nn.levels import is_cyclic
    from implicit_nn.network import read_network
    from implicit_nn.params import read_params

    params = read_params(ROOT / "inputs" / "simulparams.dat")
    assert params.output_name.startswith("outputs/")
    train = np.loadtxt(ROOT / params.input_name)
    assert train.shape == (params.learn_num, params.input_num)
    for name, rows in ((params.input_name_valid, params.valid_num),
                       (params.input_name_test, params.test_num)):
        data = np.loadtxt(ROOT / name)
        assert data.shape == (rows, params.input_num + 1)
        assert set(np.unique(data[:, -1])) == {0.0, 1.0}
        assert 0.05 < data[:, -1].mean() < 0.15
    full = dataclasses.replace(params, **{f: str(ROOT / getattr(params, f)) for f in (
        "graph_datas", "logic_datas", "fixwb_datas", "shared_w_datas", "shared_b_datas")})
    assert is_cyclic(read_network(full))
    sizes = sum(p.stat().st_size for p in SMALL.rglob("*") if p.is_file())
    assert sizes < 300_000


def test_small_example_trains(tmp_path):
    """The reference engine trains the example into tmp (paths made absolute), F1 well above chance."""
    from implicit_nn import train
    from implicit_nn.tools.summarize import summarize

    result = train(example_params(tmp_path, maxiter_grad=3), backend="reference")
    assert result.stopped == "completed" and result.final.epochs == 3
    (runset,) = summarize(tmp_path / "outputs")
    assert runset.tag == "small" and runset.runs == [1]
    assert runset.values[0][runset.columns.index("VF1")] > 0.7
