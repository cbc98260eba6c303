"""Backup files (inputs.md §6): byte format, every reference backup round-trips, bad files."""

import os
import re

import numpy as np
import pytest

from implicit_nn.backup import load_backup, save_backup
from implicit_nn.errors import InputError
from implicit_nn.network import read_network
from implicit_nn.rand import GlibcRandom, initial_parameters
from test_network import example_network, reference_params

from conftest import REFERENCE

WORKED = ("-0.423620 -0.058800 \n0.500000 \n0.081621 0.081621 0.205029 \n\n\n\n"
          "0.000000 \n0.000000 \n0.058102 -0.146885 \n0.534643 \n0.534643 \n"
          "0.500000 -1.250000 3.000000 \n")


def test_worked_example_bytes(tmp_path):
    """§6.1: the §4.11 network after initialisation with seed 2025; 2N + 2 lines."""
    net = example_network(tmp_path)
    w, b = initial_parameters(net, np.float32(1.0), GlibcRandom(2025))
    path = tmp_path / "backup.dat"
    save_backup(path, net, w, b, np.float32(0.5), np.float32(-1.25), np.float32(3.0))
    assert path.read_bytes() == WORKED.encode()
    assert path.read_bytes().count(b"\n") == 2 * net.neuron_num + 2
    assert os.listdir(tmp_path).count("backup.dat") == 1 and not any(
        name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_c_specials(tmp_path):
    """glibc: -0.000000 for tiny negatives, inf, and nan / -nan by the sign bit."""
    net = example_network(tmp_path)
    nan = np.float32(np.nan)
    w = np.array([-1e-9, np.inf, -np.inf, nan, -nan, 2.5e-7], np.float32)
    b = np.array([0.0000005, 0.0000015, 123456.789, -0.0, 1.0, 7.0], np.float32)
    path = tmp_path / "b.dat"
    save_backup(path, net, w, b, np.float32(0), -nan, np.float32(1e10))
    lines = path.read_text().split("\n")
    assert lines[:3] == ["-0.000000 inf ", "-inf ", "nan -nan 0.000000 "]   # 2.5e-7 rounds down
    assert lines[6] == "0.000000 " and lines[7] == "0.000002 "   # f32 of the tie values
    assert lines[8] == "123456.789062 -0.000000 "
    assert lines[11] == "0.000000 -nan 10000000000.000000 "
    with pytest.raises(InputError) as err:        # a blown-up model is no model to load
        load_backup(path, net)
    assert str(err.value) == (f"{path}:1: weight 2 is 'inf': a backup with non-finite "
                              "trainable parameters (3 of them) cannot be used")
    w[[1, 3, 4]] = 0.5                             # only weight 3 (fixed: logic 0) stays -inf
    save_backup(path, net, w, b, np.float32(0), -nan, np.float32(1e10))
    w2, b2, th, mean, std = load_backup(path, net)
    assert w2[2] == -np.inf and np.isnan(mean) and np.signbit(mean)


def test_load_returns_raw_float32_values(tmp_path):
    net = example_network(tmp_path)
    path = tmp_path / "backup.dat"
    path.write_text(WORKED.replace("0.500000 \n", "0.25 \n", 1))
    w, b, th, mean, std = load_backup(path, net)
    assert w.dtype == np.float32 and b.dtype == np.float32 and w.shape == (6,) and b.shape == (6,)
    assert w[2] == np.float32(0.25)                         # fixed value kept raw
    assert (th, mean, std) == (np.float32(0.5), np.float32(-1.25), np.float32(3.0))
    assert net.apply_fixed(w, b)[0][2] == np.float32(0.5)


def reference_backups():
    if not REFERENCE.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no reference at {REFERENCE}"))]
    return sorted(REFERENCE.glob("*/*/backup_best_*.dat"))


@pytest.mark.parametrize("path", reference_backups(),
                         ids=lambda p: p and f"{p.parent.parent.name}/{p.parent.name}/{p.name[-6:-4]}")
def test_reference_backups_round_trip(tmp_path, path):
    family, m, s, lat = re.match(r"backup_best_autoencoder_(v\d)_M(\d+)_S(\d+)_L(\d+)-I8_\d+\.dat",
                                 path.name).groups()
    net = read_network(reference_params(family, int(m), int(s), int(lat)))
    values = load_backup(path, net)
    out = tmp_path / path.name
    save_backup(out, net, *values)
    assert out.read_bytes() == path.read_bytes()


BAD = [
    ("0.058102 -0.146885 \n", "0.058102 \n", r"number 15 of 15 numbers.*found end of file \(the "
                                             r"file holds only 14\)", 12),
    ("0.534643 \n0.534643 \n", "0.534643 \nx \n", r"number 12 of 15 numbers.*found 'x'", 11),
    ("3.000000 \n", "3.000000 4.0\n", r"more than the 15 numbers.*'4.0'", 12),
    ("0.081621 0.081621", "0.081621 0.081621abc", r"number 5 of 15.*found '0.081621abc'", 3),
]


@pytest.mark.parametrize("old, new, message, line", BAD)
def test_bad_backups(tmp_path, old, new, message, line):
    """inputs Q15: a short, long or non-numeric backup is an error naming the file and line."""
    net = example_network(tmp_path)
    path = tmp_path / "backup.dat"
    path.write_text(WORKED.replace(old, new, 1))
    with pytest.raises(InputError) as info:
        load_backup(path, net)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)
    assert re.search(message, info.value.message), str(info.value)


def test_save_replaces_atomically_and_reports_write_errors(tmp_path):
    net = example_network(tmp_path)
    w = b = np.zeros(6, np.float32)
    path = tmp_path / "backup.dat"
    path.write_text("old content")
    save_backup(path, net, w, b, 0, 0, 0)
    assert path.read_text().startswith("0.000000 0.000000 \n")
    with pytest.raises(InputError, match="File write error in backup file") as info:
        save_backup(tmp_path / "missing" / "backup.dat", net, w, b, 0, 0, 0)
    assert info.value.path == str(tmp_path / "missing" / "backup.dat")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["backup.dat", "graph.dat", "logic.dat", "fixwb.dat", "shared_w.dat", "shared_b.dat"])
