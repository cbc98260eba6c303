"""Microseconds per training sample of the numba engine's compiled minibatch loop alone.

`engine.train_steps` over the first 8192 HTRU2 training rows (all 13164 for v0) at the weights of
published run 1, SGD + Nesterov as published, for each model, minibatch size and numba thread
count: no validation, no driver, so the figure is the train step itself (a minibatch of
cpu_kernels.SPLIT_ROWS rows or more is split among the threads). Configurations alternate within
each round; the table gives min and median over rounds, then per model the per-sample cost
relative to the smallest minibatch and 2 threads / 1 thread, both of the medians. Nothing is
asserted; measure side by side and quote ratios.

    python benchmarks/bench_steps.py [--models v0_5_32_8 v1_5_32_8] [--mb 16 64 256]
        [--threads 1 2] [--repeats 5]
"""
import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from implicit_nn.data import read_train  # noqa: E402
from test_golden_predict import REFERENCE, loaded_engine  # noqa: E402


def per_sample(engine, x, batch, threads):
    """Seconds per sample of one train_steps call over all of x on `threads` threads."""
    numba.set_num_threads(threads)
    count = len(x) // batch
    lr, beta1 = np.full(count, 0.001, np.float32), np.full(count, 0.9, np.float32)
    start = time.perf_counter()
    engine.train_steps(x, 0, count, batch, lr, beta1)
    return (time.perf_counter() - start) / (count * batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["v0_5_32_8", "v1_5_32_8"])
    parser.add_argument("--mb", nargs="+", type=int, default=[16, 64, 256])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    train = read_train(REFERENCE / "data" / "htru2smote_train.csv", 13164, 8)
    threads = [t for t in args.threads if t <= numba.config.NUMBA_NUM_THREADS]
    for model in args.models:
        x = train if model.startswith("v0") else train[:8192]
        configs = list(itertools.product(args.mb, threads))
        engines = {c: loaded_engine(model, 1, "cpu") for c in configs}
        for (batch, count), engine in engines.items():      # compile / warm up
            per_sample(engine, x[:2 * batch], batch, count)
        times = {c: [] for c in configs}
        for _ in range(args.repeats):
            for c in configs:
                times[c].append(per_sample(engines[c], x, *c))
        median = {c: statistics.median(v) for c, v in times.items()}
        print(f"{model}: µs per training sample, min / median of {args.repeats}")
        for c in configs:
            print(f"  mb {c[0]:>4}  threads {c[1]}  {min(times[c]) * 1e6:8.2f} "
                  f"{median[c] * 1e6:8.2f}")
        for count in threads:
            rel = "  ".join(f"mb {b}: {median[b, count] / median[args.mb[0], count]:.2f}"
                            for b in args.mb)
            print(f"  per-sample cost relative to mb {args.mb[0]}, threads {count}:  {rel}")
        if 1 in threads and 2 in threads:
            print("  2 threads / 1 thread:  " + "  ".join(
                f"mb {b}: {median[b, 2] / median[b, 1]:.2f}" for b in args.mb))


if __name__ == "__main__":
    main()
