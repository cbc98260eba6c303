"""The command line's habits: train is the default command, --version, help for every argument."""

import argparse
import os
import subprocess
import sys

import pytest

import implicit_nn
from implicit_nn import cli
from conftest import ROOT


@pytest.mark.parametrize("argv,expected", [
    ([], ["train"]),
    (["p.dat"], ["train", "p.dat"]),
    (["--quiet"], ["train", "--quiet"]),
    (["--backend", "cpu", "p.dat"], ["train", "--backend", "cpu", "p.dat"]),
    (["check", "p.dat"], ["check", "p.dat"]),
    (["--version"], ["--version"]),
    (["-h"], ["-h"]),
])
def test_train_is_the_default_command(argv, expected):
    assert cli._with_command(argv) == expected


def test_bare_options_parse_as_train():
    args = cli.build_parser().parse_args(cli._with_command(["--quiet", "--backend", "cpu", "x.dat"]))
    assert (args.command, args.quiet, args.backend, args.params) == ("train", True, "cpu", "x.dat")
    args = cli.build_parser().parse_args(cli._with_command([]))
    assert (args.command, args.params) == ("train", cli.DEFAULT_PARAMS)


def test_params_file_without_command_is_trained(tmp_path, capsys):
    """`implicit-nn FILE` reaches the trainer: a missing file is train's one-line error."""
    assert cli.main([str(tmp_path / "nowhere.dat"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("implicit-nn: error: ") and "nowhere.dat" in err and err.count("\n") == 1


def test_version():
    done = subprocess.run([sys.executable, "-m", "implicit_nn", "--version"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == f"implicit-nn {implicit_nn.__version__}\n"


def _actions(parser):
    """(command, action) for every argument of the parser and its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for _, sub_action in _actions(sub):
                    yield name, sub_action
        else:
            yield "", action


def test_every_option_and_positional_has_help():
    actions = list(_actions(cli.build_parser()))
    assert {name for name, _ in actions} >= set(cli.HANDLERS)
    missing = [f"{name} {action.dest}" for name, action in actions if not action.help]
    assert not missing, missing


def test_the_exit_runs_atexit_handlers_and_flushes_the_streams():
    """cli.leave ends the process without the interpreter's teardown, but as a normal exit
    does otherwise: main's status, atexit handlers run (once), buffered output written."""
    code = ("import atexit, sys\n"
            "from implicit_nn import cli\n"
            "def main():\n"
            "    atexit.register(lambda: print('handler ran'))\n"
            "    sys.stdout.write('buffered, ')\n"
            "    sys.stderr.write('error line')\n"
            "    return 3\n"
            "cli.main = main\n"
            "sys.exit(cli.run())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 3
    assert done.stdout == "buffered, handler ran\n" and done.stderr == "error line"


def test_every_command_has_a_description():
    sub = next(a for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.HANDLERS)
    for name, parser in sub.choices.items():
        assert parser.description and parser.prog == f"implicit-nn {name}", name


def test_the_process_entry_runs_main_then_leaves_the_collector_out_of_the_exit(monkeypatch):
    """`implicit-nn` and `python -m implicit_nn` call cli.run: young collections rarer during
    main, main's exit status, then the garbage collector frozen and off (its passes over
    numba's objects were most of the exit)."""
    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 3)
    monkeypatch.setattr(cli.gc, "set_threshold", lambda *t: calls.append(t))
    monkeypatch.setattr(cli.gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(cli.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(cli, "leave", lambda status: calls.append("leave") or status)
    assert cli.run() == 3
    assert calls == [(cli.COLLECT_EVERY, 10, 10), "main", "disable", "freeze", "leave"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'implicit-nn = "implicit_nn.cli:run"' in pyproject
    assert "sys.exit(run())" in (ROOT / "implicit_nn" / "__main__.py").read_text()
