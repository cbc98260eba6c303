"""Non-convergence made visible (convergence.py): console lines per validation and for the final
predictions; `check` warns about maxiter_fix below the PERT depth. The logs stay unchanged."""

from types import SimpleNamespace

import numpy as np

from implicit_nn.cli import main
from implicit_nn.convergence import Unconverged
from implicit_nn.engine.base import Solve
from test_driver import log_rows, setup  # noqa: F401  (the run folder fixture)

F32 = np.float32


def test_counts_units_with_an_unconverged_solve_and_the_last_residual():
    tally = Unconverged(SimpleNamespace(maxiter_fix=50, tol_fixit=F32(1e-5)))
    ok, bad = Solve(7, True, F32(1e-6)), Solve(50, False, F32(3e-3))
    tally.add(ok, ok)
    assert tally.report("the last {units} minibatches") is None
    tally.add(ok, bad)
    tally.add(Solve(50, False, F32(np.nan)), ok)
    tally.add(Solve(50, False, F32(2.5e-4)), bad)
    tally.add(ok, ok)
    assert tally.report("the last {units} minibatches") == (
        "Warning: 3 of the last 4 minibatches (75%) had a fixed-point solve that stopped at "
        "maxiter_fix 50 without reaching tol_fixit 1.00E-05 (last residual 3.00E-03)")
    assert tally.report("the last {units} minibatches") is None           # counts start again


def test_unconverged_training_and_predictions_warn_on_the_console(setup, capsys):
    """maxiter_fix 1 on the fixed-point path of a depth-4 graph: every solve stops early. One
    line per validation and one for the final predictions, in train and in predict; the log
    files are those of a run without the warnings (no extra lines)."""
    root = setup(ff_optimization=0, maxiter_fix=1, maxiter_grad=1)
    assert main(["train", "--backend", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    warnings = [line for line in out if line.startswith("Warning:")]
    assert [w.split(" had ")[0] for w in warnings] == [
        "Warning: 2 of the last 2 minibatches (100%)", "Warning: 2 of the last 2 minibatches (100%)",
        "Warning: 2 of the last 2 minibatches (100%)", "Warning: 1 of the last 1 minibatches (100%)",
        "Warning: 7 of the 7 prediction chunks of the final evaluation (100%)"]
    assert all("stopped at maxiter_fix 1 without reaching tol_fixit 1.00E-05 (last residual "
               in w for w in warnings)
    assert len(log_rows(root / "out/results.dat")) == 4
    assert "Warning" not in "".join(p.read_text() for p in (root / "out").iterdir())
    assert main(["predict", "--load", "out/backup.dat", "--backend", "cpu"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if "Warning:" in line]
    assert len(warnings) == 1 and "7 prediction chunks of the final evaluation" in warnings[0]


def test_converged_run_prints_no_warning(setup, capsys):
    setup(ff_optimization=0, maxiter_grad=1)
    assert main(["train", "--backend", "cpu"]) == 0
    assert "Warning" not in capsys.readouterr().out


def test_check_warns_when_maxiter_fix_is_below_the_pert_depth(setup, capsys):
    setup(ff_optimization=0, maxiter_fix=3)
    assert main(["check"]) == 0
    out = capsys.readouterr().out.splitlines()
    graph = next(i for i, line in enumerate(out) if line.startswith("Graph:"))
    assert out[graph:graph + 2] == [
        "Graph:              acyclic, PERT depth 4 (fixed-point iteration)",
        "Warning:            maxiter_fix 3 is below the PERT depth 4: every forward solve stops "
        "before the inputs reach the outputs (raise maxiter_fix, or set ff_optimization 1)"]
    for changes in (dict(ff_optimization=0, maxiter_fix=4), dict(ff_optimization=1, maxiter_fix=1)):
        setup(**changes)
        assert main(["check"]) == 0
        assert "Warning" not in capsys.readouterr().out
