"""The Makefile's environment logic, by dry runs (`make -n`): what a newcomer's `make run` and
`make test` would do with no venv active, with one active, and after a change of interpreter."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def plan(target, venv=None, active=None, python="python3"):
    """The commands `make -n target` would run (VIRTUAL_ENV=active, or none active)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS")}
    if active:
        env["VIRTUAL_ENV"] = str(active)
    args = ["make", "-s", "-n", "-C", str(ROOT), target, f"PYTHON={python}"]
    if venv:
        args.append(f"VENV={venv}")
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def fake_venv(folder):
    """A folder whose bin/python is this interpreter, as a venv's is."""
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(sys.executable)
    return folder


def stamp_text(python):
    done = subprocess.run([str(python), "-c",
                           "import sys; print(sys.executable, sys.version.split()[0])"],
                          capture_output=True, text=True)
    return done.stdout


def test_no_venv_active_creates_a_local_one(tmp_path):
    venv = tmp_path / "fresh"
    commands = plan("run", venv=venv, python="/usr/bin/python3.99")
    assert commands[0].startswith(f"/usr/bin/python3.99 -m venv {venv} || ")
    assert any(c.startswith(f"{venv}/bin/python -m pip install -e '.[test]'") for c in commands)
    assert commands[-1] == f"mkdir -p outputs && {venv}/bin/python -m implicit_nn train " \
                           "inputs/simulparams.dat"
    assert not any(c.startswith(("pip ", "python3 -m pip")) for c in commands)   # never system-wide


def test_default_local_venv_is_dot_venv():
    commands = plan("test")
    assert commands[-1] == ".venv/bin/python -m pytest -q"


def test_active_venv_is_used_and_never_created(tmp_path):
    active = fake_venv(tmp_path / "mine")
    commands = plan("test", active=active)
    assert not any("-m venv" in c for c in commands)
    assert f"{active}/bin/python -m pip install -e '.[test]'" in commands
    assert commands[-1] == f"{active}/bin/python -m pytest -q"


def test_stamp_skips_the_install_for_the_same_interpreter(tmp_path):
    active = fake_venv(tmp_path / "mine")
    stamp = active / ".implicit-nn-installed"
    stamp.write_text(stamp_text(active / "bin" / "python"))
    os.utime(stamp, (2**31, 2**31))                      # newer than pyproject.toml
    assert plan("test", active=active) == [f"{active}/bin/python -m pytest -q"]


def test_stamp_of_another_interpreter_means_installing_again(tmp_path):
    active = fake_venv(tmp_path / "mine")
    stamp = active / ".implicit-nn-installed"
    stamp.write_text("/somewhere/else/bin/python 3.10.0\n")
    os.utime(stamp, (2**31, 2**31))
    commands = plan("test", active=active)
    assert f"{active}/bin/python -m pip install -e '.[test]'" in commands
