"""Compiling ahead (issue 17 item 1): `implicit-nn compile` (make install runs it) and the run's own
ahead-of-time compile cover exactly the kernel signatures a run calls, so that nothing compiles in
the middle of a run; the console says when numba compiles.
"""
import io

import numba
import numpy as np

from implicit_nn.cli import main
from implicit_nn.compiling import LABEL, announced
from implicit_nn.console import Console
from implicit_nn.engine import cpu_kernels as kernels
from implicit_nn.fastdata import _parse
from implicit_nn.schedule import _steps
from test_driver import setup, train  # noqa: F401  (the run folder fixture)

DISPATCHERS = (kernels.train_steps, kernels.predict, _steps, _parse)


def signatures():
    return [set(d.signatures) for d in DISPATCHERS]


def test_compile_command_covers_every_signature_of_a_run(setup, capsys):
    """After `implicit-nn compile`, trainings (implicit and level-by-level) and a prediction with
    a backup add no signature: their kernels come from numba's cache, none is compiled; a second
    `implicit-nn compile` has nothing to compile and says nothing."""
    assert main(["compile"]) == 0
    after_install = signatures()
    assert all(after_install)
    root = setup(ff_optimization=0)
    assert train() == 0
    root = setup(ff_optimization=1)
    assert train() == 0
    assert main(["predict", "--quiet", "--backend", "cpu", "--load", "out/backup.dat"]) == 0
    assert signatures() == after_install
    assert (root / "out/predict_test.dat").exists()
    capsys.readouterr()
    assert main(["compile"]) == 0
    assert capsys.readouterr().out == ""


def test_a_run_compiles_ahead_for_the_very_types_it_calls_with(setup, monkeypatch):
    """The start-up's compile (the engine's kernels on zero rows) uses the argument types of
    every later call, so that the run compiles nothing after saying it did."""
    seen = {}

    def recording(name, kernel):
        def call(*args):
            seen.setdefault(name, []).append(tuple(numba.typeof(a) for a in args))
            return kernel(*args)
        return call

    for name in ("train_steps", "predict"):
        monkeypatch.setattr(kernels, name, recording(name, getattr(kernels, name)))
    setup(ff_optimization=0)
    assert train() == 0
    assert main(["predict", "--quiet", "--backend", "cpu", "--load", "out/backup.dat"]) == 0
    assert len(seen["train_steps"]) > 1 and len(seen["predict"]) > 2
    for calls in seen.values():
        assert set(calls) == {calls[0]}


def test_a_compilation_is_announced_and_timed():
    stream = io.StringIO()

    @numba.njit
    def new_kernel(x):           # never compiled before: numba compiles it inside the block
        return x + 1

    with announced(Console(stream=stream)):
        assert new_kernel(np.int64(1)) == 2
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{LABEL} (once after an install")
    assert lines[1].startswith(f"{LABEL:<35}| 100.00% ET: ")
    stream = io.StringIO()
    with announced(Console(stream=stream)):
        assert new_kernel(np.int64(2)) == 3     # compiled already: nothing to say
    assert stream.getvalue() == ""


def test_quiet_runs_say_nothing_about_compiling():
    stream = io.StringIO()

    @numba.njit
    def other_kernel(x):
        return x * 2

    with announced(Console(quiet=True, stream=stream)):
        assert other_kernel(np.int64(2)) == 4
    assert stream.getvalue() == ""


def test_compile_writes_the_package_bytecode(tmp_path, monkeypatch):
    """`implicit-nn compile` leaves a .pyc beside every module, even for an interpreter that
    may not write bytecode itself (PYTHONDONTWRITEBYTECODE): imports then skip compiling."""
    import importlib.util
    import shutil
    import sys
    from pathlib import Path

    import implicit_nn
    from implicit_nn import compiling

    package = tmp_path / "implicit_nn"
    shutil.copytree(Path(implicit_nn.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(compiling, "__file__", str(package / "compiling.py"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert compiling.compile_bytecode()
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 30
    for module in modules:
        assert Path(importlib.util.cache_from_source(str(module))).is_file(), module
