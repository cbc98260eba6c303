"""What a solver's training gives: final test metrics of seeded runs of the paper's HTRU2 jobs,
each solver against the spread of the first (the original's faithful sweep by default).

The runs are the published ones' (../shared/reference/README.md: seed run+2024, 20 epochs,
minibatch 16, tol_fixit 1e-5, maxiter_fix 50, ...), trained as `implicit-nn train --solver S`
does, one process per run. With the faithful solver run r reproduces the original's
test_metrics_final of the published run r. Printed: each run's final metrics, the spread
(min-max) of the first solver over the runs, which values of the other solvers fall outside it,
and the means. Nothing is asserted; the fixed points of an opt-in solver are equal to the faithful
ones only to tol_fixit, so its training takes another path and only the spread can be compared.

    python benchmarks/solver_quality.py [--model v1_5_32_8] [--runs 1 2 3 4]
        [--solvers faithful blocks] [--epochs 20]
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def final_metrics(model, run, solver, epochs, folder):
    """(names, values) of the final test metrics of one seeded run."""
    from implicit_nn.tools.summarize import read_final_log
    from test_golden_load import historical_params
    out = Path(folder) / f"{solver}-{run}"
    out.mkdir()
    params = out / "simulparams.dat"
    params.write_text(historical_params(model, run, str(out), maxiter_grad=epochs))
    subprocess.run([sys.executable, "-m", "implicit_nn", "train", "--quiet", "--backend", "cpu",
                    "--solver", solver, str(params)], check=True, stdout=subprocess.DEVNULL)
    names, values = read_final_log(next(out.glob("test_metrics_final_*.dat")))
    return names[:-1], values[:-1]         # ET (seconds) is not a metric


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="v1_5_32_8")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--solvers", nargs="+", default=["faithful", "blocks"])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    results, names = {}, None
    with tempfile.TemporaryDirectory() as folder:
        for solver in args.solvers:
            for run in args.runs:
                names, results[solver, run] = final_metrics(args.model, run, solver,
                                                            args.epochs, folder)
                print(f"{solver:<9} run {run}  " + "  ".join(
                    f"{n} {v:.4f}" for n, v in zip(names, results[solver, run])), flush=True)
    base = args.solvers[0]
    columns = range(len(names))
    low = [min(results[base, r][i] for r in args.runs) for i in columns]
    high = [max(results[base, r][i] for r in args.runs) for i in columns]
    print(f"\nspread of {base}: " + "  ".join(f"{names[i]} {low[i]:.4f}-{high[i]:.4f}"
                                              for i in columns))
    for solver in args.solvers:
        mean = [sum(results[solver, r][i] for r in args.runs) / len(args.runs) for i in columns]
        outside = [f"run {r} {names[i]} {results[solver, r][i]:.4f}" for r in args.runs
                   for i in columns if not low[i] <= results[solver, r][i] <= high[i]]
        print(f"{solver:<9} means " + "  ".join(f"{names[i]} {mean[i]:.4f}" for i in columns))
        if solver != base:
            print(f"{'':<9} outside the spread: {', '.join(outside) or 'none'}")


if __name__ == "__main__":
    main()
