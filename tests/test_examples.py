"""The bundled examples: the small example's files are current and train; the HTRU2 paper script
runs end to end on a short setting."""

import dataclasses
import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, example_params

SMALL = ROOT / "examples" / "small"


def _driver_missing():
    """Why the trainer cannot run yet (None when it can)."""
    try:
        import implicit_nn.driver  # noqa: F401
    except ImportError as exc:
        return f"implicit_nn.driver cannot be imported yet: {exc}"
    if importlib.util.find_spec("implicit_nn.engine.cpu") is None:
        return "the numba CPU engine (implicit_nn.engine.cpu) is not there yet"
    return None


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


def test_paper_script_rejects_a_folder_without_the_splits(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "htru2_paper.py"),
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "htru2smote_train.csv" in done.stderr


def test_paper_script_end_to_end(reference, tmp_path):
    reason = _driver_missing()
    if reason:
        pytest.skip(reason)
    out = tmp_path / "v0_5_32_8"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "htru2_paper.py"), str(reference / "data"),
         "--epochs", "2", "--runs", "2", "--learn-num", "400", "--backend", "cpu",
         "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    tag = "v0_M5_S32_L8-I8"
    assert f"{tag}: 2 runs; best by VF1" in done.stdout
    for k in (1, 2):
        params = (out / f"simulparams_{tag}_{k}.dat").read_text().split()
        assert params[1] == str(2024 + k)          # seed = run + 2024
        lines = (out / f"test_metrics_final_{tag}_{k}.dat").read_text().splitlines()
        assert len(lines) == 5 and lines[3].split("|")[1].strip() == "2"
    # the network is the paper's v0 configuration, byte for byte
    config = reference / "configs" / "v0"
    for name in (f"graph_autoencoder_{tag}.dat", f"logic_autoencoder_{tag}.dat"):
        assert (out / "network" / name).read_bytes() == (config / name).read_bytes()
