"""Time per training minibatch (forward + backward + update): reference vs numba engine.

The paper's (5;32;8) autoencoders, v0 (PERT path) and v1 (implicit, tol 1e-5, itmax 50), at the
weights of published run 1, minibatches of 16 HTRU2 training rows, SGD + Nesterov as published.
Also times one prediction pass over the validation file. Numbers only, nothing is asserted.

    python benchmarks/bench_engine.py [--batches 400] [--models v0_5_32_8 v1_5_32_8]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from implicit_nn.data import read_labeled, read_train  # noqa: E402
from test_golden_predict import REFERENCE, loaded_engine  # noqa: E402


def per_batch(engine, x, batches, batch=16):
    """Seconds per train_step over `batches` consecutive minibatches (after one warm-up step)."""
    engine.train_step(x[:batch], np.float32(0.01), np.float32(0.9))
    start = time.perf_counter()
    for q in range(batches):
        row = (q * batch) % (x.shape[0] - batch)
        engine.train_step(x[row:row + batch], np.float32(0.01), np.float32(0.9))
    return (time.perf_counter() - start) / batches


def prediction_time(engine, x):
    engine.predict(x[:16], 16)
    start = time.perf_counter()
    engine.predict(x, 16)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400, help="numba minibatches timed")
    parser.add_argument("--models", nargs="+", default=["v0_5_32_8", "v1_5_32_8"])
    args = parser.parse_args()
    train = read_train(REFERENCE / "data" / "htru2smote_train.csv", 13164, 8)
    valid, _ = read_labeled(REFERENCE / "data" / "htru2smote_valid.csv", 2929, 8)
    print(f"{'model':<12}{'reference µs/batch':>20}{'numba µs/batch':>16}{'ratio':>8}"
          f"{'ref predict s':>15}{'numba predict s':>17}")
    for model in args.models:
        ref, cpu = loaded_engine(model, 1, "reference"), loaded_engine(model, 1, "cpu")
        t_ref = per_batch(ref, train, max(args.batches // 40, 5))
        t_cpu = per_batch(cpu, train, args.batches)
        p_ref, p_cpu = prediction_time(ref, valid), prediction_time(cpu, valid)
        print(f"{model:<12}{t_ref * 1e6:>20.1f}{t_cpu * 1e6:>16.1f}{t_ref / t_cpu:>7.0f}×"
              f"{p_ref:>15.3f}{p_cpu:>17.4f}")


if __name__ == "__main__":
    main()
