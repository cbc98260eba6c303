"""Seconds per epoch, GPU (CuPy) vs numba CPU, on the paper's HTRU2 jobs, side by side.

Jobs: the (5;32;8) and (7;64;16) autoencoders, v0 (PERT levels, ff_optimization 1) and v1
(implicit, arctan), with the published runs' settings: 13164 SMOTE training rows, minibatch 16,
sfreq 11 (validation 2929 + test 1790 rows predicted 12 times per epoch). Both backends run through
`implicit_nn.driver` as `implicit-nn train` does, after a short warm-up run (kernel compile, numba
cache load). A measurement is the run's own elapsed time (ET of its last results-log row, start-up
excluded, as the original measures it) divided by its epochs; the backends alternate, repeat after
repeat, and the table gives min and median. The last column is the original program's ET after
epoch 1 of the published run 1 (reference/training, on the authors' GPU), for scale.

    python benchmarks/bench_gpu.py [--epochs 1] [--repeats 3] [--threads 2] [--models ...] [--backends gpu cpu]
    python benchmarks/bench_gpu.py --smoke    # 320 rows, one validation: does it run (times mean nothing)
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import REFERENCE, log_rows  # noqa: E402
from test_golden_load import historical_params, tag  # noqa: E402

MODELS = ("v0_5_32_8", "v1_5_32_8", "v0_7_64_16", "v1_7_64_16")
SMOKE = dict(learn_num=320, sfreq=1)     # 20 minibatches, one validation


def seconds_per_epoch(model, backend, epochs, job, threads):
    """One run of `epochs` epochs; its ET per epoch."""
    from implicit_nn.driver import train
    from implicit_nn.params import read_params
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "simulparams.dat"
        text = historical_params(model, 1, tmp, maxiter_grad=epochs, **job)
        path.write_text(text.replace("thread_num                 2", f"thread_num                 {threads}"))
        train(read_params(path), backend=backend, quiet=True)
        et = float(log_rows(Path(tmp) / f"results_{tag(model)}_1.dat")[-1][10])
        return et / epochs


def original_seconds(model):
    """ET after epoch 1 of the original's published run 1, or None without the reference data."""
    log = REFERENCE / "training" / model / f"results_{tag(model)}_1.dat"
    if not log.is_file():
        return None
    rows = [row for row in log_rows(log) if row[0] == "1"]
    return float(rows[-1][10])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1, help="epochs per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per backend and model")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--backends", nargs="+", default=["gpu", "cpu"], choices=("gpu", "cpu"))
    ap.add_argument("--threads", type=int, default=2, help="numba threads (thread_num; published runs: 2)")
    ap.add_argument("--smoke", action="store_true",
                    help="a 320-row epoch with one validation, one repeat: checks that the benchmark runs")
    args = ap.parse_args()
    job, repeats = (SMOKE, 1) if args.smoke else ({}, args.repeats)
    if "gpu" in args.backends:
        from implicit_nn.engine.gpu import gpu_available
        ok, why = gpu_available()
        if not ok:
            sys.exit(f"bench_gpu: {why}")
        print(f"device: {why}")
    print(f"{args.epochs} epoch(s) per measurement, {repeats} repeat(s), backends alternating, "
          f"thread_num {args.threads}"
          + (" (smoke run: times mean nothing)" if args.smoke else ""))
    print(f"{'model':<11} " + " ".join(f"{b + ' min/median s/epoch':>26}" for b in args.backends)
          + (f" {'cpu/gpu':>8}" if len(args.backends) == 2 else "") + f" {'original':>9}")
    for model in args.models:
        times = {b: [] for b in args.backends}
        for backend in args.backends:             # warm-up: compile / cache load
            seconds_per_epoch(model, backend, 1, SMOKE, args.threads)
        for _ in range(repeats):
            for backend in args.backends:
                times[backend].append(seconds_per_epoch(model, backend, args.epochs, job, args.threads))
        cells = [f"{min(t):12.2f} / {statistics.median(t):<11.2f}" for t in times.values()]
        ratio = (f" {min(times['cpu']) / max(min(times['gpu']), 1e-9):7.1f}x"
                 if len(args.backends) == 2 else "")
        orig = original_seconds(model)
        print(f"{model:<11} " + " ".join(cells) + ratio
              + f" {'-' if orig is None or args.smoke else f'{orig:.2f}':>9}", flush=True)


if __name__ == "__main__":
    main()
