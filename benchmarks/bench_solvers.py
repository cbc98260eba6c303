"""Anderson acceleration vs the original's plain iteration: sweeps and seconds per epoch.

Jobs: the paper's HTRU2 runs of the implicit v1 (5;32;8) and (7;64;16) autoencoders (run 1's
seed, 13164 training rows, minibatch 16, tol_fixit 1e-5, maxiter_fix 50, 11 validations per
epoch), trained through `implicit_nn.driver` on the numba engine exactly as `implicit-nn train
[--solver anderson ...]` does. Solvers run alternately, `--repeats` times each, after one
warm-up epoch each (numba compile / cache load); the table gives min and median s/epoch and the
mean sweeps per training minibatch forward and adjoint, and per validation chunk (from the
--stats file of each run). Needs ../shared/reference (the HTRU2 data and configs).

    python benchmarks/bench_solvers.py [--epochs 1] [--repeats 3] [--models v1_5_32_8 ...]
                                       [--anderson-m 5] [--anderson-beta 1.0]
                                       [--anderson-start 0 8]   (one Anderson row per start)
                                       [--initdx 10]            (a slowly contracting start)
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from implicit_nn.driver import train  # noqa: E402
from implicit_nn.params import read_params  # noqa: E402
from implicit_nn.solver import ANDERSON_START, SolverOptions  # noqa: E402
from implicit_nn.solver_stats import read_stats  # noqa: E402

MODELS = ("v1_5_32_8", "v1_7_64_16")
RUN = 1


def job(model, folder, epochs, threads, initdx=None):
    from test_golden_load import historical_params
    path = Path(folder) / "simulparams.dat"
    text = historical_params(model, RUN, folder, maxiter_grad=epochs)
    text = text.replace("thread_num                 2", f"thread_num                 {threads}")
    if initdx is not None:      # a harder job: larger initial weights, slower contraction
        text = text.replace("initdx                     1.0",
                            f"initdx                     {initdx}")
    path.write_text(text)
    return read_params(path)


def sweeps(stats_path):
    """Mean sweeps per solve over the whole run: training forward, adjoint, validation."""
    rows = read_stats(stats_path)
    out = []
    for group in ("train_forward", "train_backward", "valid_forward"):
        solves = sum(r[f"{group}_solves"] for r in rows)
        total = sum(r[f"{group}_solves"] * r[f"{group}_iter_mean"] for r in rows
                    if r[f"{group}_solves"])
        out.append(total / solves if solves else float("nan"))
    return out


def timed(params, solver, folder, tag):
    stats = Path(folder) / f"stats_{tag}.csv"
    stats.unlink(missing_ok=True)
    t0 = time.perf_counter()
    run = train(params, backend="cpu", quiet=True, stats=str(stats), solver=solver)
    seconds = (time.perf_counter() - t0) / params.maxiter_grad
    return seconds, sweeps(stats), float(run.final.valid_f1 if run.final else float("nan"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--anderson-m", type=int, default=5)
    parser.add_argument("--anderson-beta", type=float, default=1.0)
    parser.add_argument("--anderson-start", type=int, nargs="+", default=[ANDERSON_START])
    parser.add_argument("--initdx", type=float, default=None,
                        help="replace the job's initdx 1.0 (e.g. 10: a slowly contracting start)")
    args = parser.parse_args()
    solvers = {"plain": SolverOptions()}
    for start in args.anderson_start:
        solvers[f"AA s={start}"] = SolverOptions("anderson", args.anderson_m, args.anderson_beta,
                                                 start)
    print(f"s/epoch over {args.repeats} alternating repeats of {args.epochs} epoch(s), "
          f"{args.threads} thread(s); sweeps = mean per solve (train forward / adjoint / "
          f"validation chunks); Anderson (AA) m={args.anderson_m} beta={args.anderson_beta:g}, "
          f"s = plain sweeps before mixing")
    print(f"{'job':12} {'solver':9} {'min s':>7} {'median s':>9} {'sweeps F/B/V':>20} "
          f"{'valid F1':>9}")
    for model in args.models:
        with tempfile.TemporaryDirectory() as folder:
            params = job(model, folder, args.epochs, args.threads, args.initdx)
            for tag, solver in solvers.items():         # warm-up: compile / cache load
                timed(params, solver, folder, tag)
            results = {tag: [] for tag in solvers}
            for _ in range(args.repeats):
                for tag, solver in solvers.items():
                    results[tag].append(timed(params, solver, folder, tag))
            for tag, runs in results.items():
                times = [r[0] for r in runs]
                f, b, v = runs[-1][1]
                print(f"{model:12} {tag:9} {min(times):7.2f} {statistics.median(times):9.2f} "
                      f"{f:6.1f} /{b:5.1f} /{v:5.1f} {runs[-1][2]:9.4f}")
            plain = min(r[0] for r in results["plain"])
            for tag in list(results)[1:]:
                print(f"{model:12} {tag} / plain, min s/epoch: "
                      f"{min(r[0] for r in results[tag]) / plain:.2f}")


if __name__ == "__main__":
    main()
