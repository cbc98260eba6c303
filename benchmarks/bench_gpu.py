"""Seconds per epoch, GPU (CuPy) vs numba CPU, on the paper's HTRU2 jobs.

Jobs: the (5;32;8) and (7;64;16) autoencoders, v0 (PERT levels, ff_optimization 1) and v1
(implicit, arctan), 13164 SMOTE training rows, minibatch 16, validation cadence sfreq 11 (valid
2929 + test 1790 rows predicted 12× per epoch). Both backends run through `implicit_nn.driver`
exactly as `implicit-nn train` does, after one warm-up epoch (kernel compile / numba cache load).

    python benchmarks/bench_gpu.py [--epochs N] [--models v0_5_32_8 v1_5_32_8 ...] [--skip-cpu]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODELS = ("v0_5_32_8", "v1_5_32_8", "v0_7_64_16", "v1_7_64_16")


def seconds_per_epoch(model, backend, epochs):
    from implicit_nn.driver import train
    from implicit_nn.params import read_params
    from test_golden_load import historical_params
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "simulparams.dat"
        path.write_text(historical_params(model, 1, tmp, maxiter_grad=1))
        train(read_params(path), backend=backend, quiet=True)          # warm-up
        path.write_text(historical_params(model, 1, tmp, maxiter_grad=epochs))
        params = read_params(path)
        t0 = time.perf_counter()
        train(params, backend=backend, quiet=True)
        return (time.perf_counter() - t0) / epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--skip-cpu", action="store_true", help="time the GPU only")
    args = ap.parse_args()
    from implicit_nn.engine.gpu import gpu_available
    ok, why = gpu_available()
    if not ok:
        sys.exit(f"bench_gpu: {why}")
    print(f"device: {why}; {args.epochs} epoch(s) per measurement")
    print(f"{'model':<12} {'gpu s/epoch':>12} {'cpu s/epoch':>12} {'speed-up':>9}")
    for model in args.models:
        gpu = seconds_per_epoch(model, "gpu", args.epochs)
        cpu = None if args.skip_cpu else seconds_per_epoch(model, "cpu", args.epochs)
        cpu_text = "-" if cpu is None else f"{cpu:12.2f}"
        ratio = "-" if cpu is None else f"{cpu / gpu:8.1f}x"
        print(f"{model:<12} {gpu:12.2f} {cpu_text:>12} {ratio:>9}", flush=True)


if __name__ == "__main__":
    main()
