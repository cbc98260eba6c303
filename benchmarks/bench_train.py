"""Seconds per epoch: our trainer vs an equivalent PyTorch-CPU loop on the paper's HTRU2 job.

Job: the (5;32;8)-v0 autoencoder, 13164 SMOTE training rows, minibatch 16, SGD with Nesterov
momentum 0.9, cosine annealing 0.01 -> 0.001 over the run, L2 1e-4, 11 validations per epoch (valid
+ test predictions, z-scores, the 8001-threshold sweep). Ours runs through `implicit_nn.driver`
exactly as `implicit-nn train` does; torch (optional, imported only if installed) runs the same
layers with nn.Linear + ReLU and uses our metrics for the sweep. Both on `--threads` CPU threads.

    python benchmarks/bench_train.py [--epochs N] [--threads 2] [--skip-torch]
"""

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from implicit_nn import metrics  # noqa: E402
from implicit_nn.tools.make_config import layer_sizes  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference"
MODEL, RUN = "v0_5_32_8", 1


def ours(epochs, threads):
    from implicit_nn.driver import train
    from implicit_nn.params import read_params
    from test_golden_load import historical_params
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "simulparams.dat"
        text = historical_params(MODEL, RUN, tmp, maxiter_grad=epochs)
        path.write_text(text.replace("thread_num                 2",
                                     f"thread_num                 {threads}"))
        params = read_params(path)
        train(params, backend="cpu", quiet=True)           # warm-up: numba compile/cache load
        t0 = time.perf_counter()
        train(params, backend="cpu", quiet=True)
        return (time.perf_counter() - t0) / epochs


def load(name, labeled):
    table = np.loadtxt(REFERENCE / "data" / name, dtype=np.float64)
    x = table[:, :8].astype(np.float32)
    return (x, table[:, 8].astype(np.int64)) if labeled else x


def torch_loop(epochs, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    train_x = torch.from_numpy(load("htru2smote_train.csv", False))
    valid_x, valid_y = load("htru2smote_valid.csv", True)
    test_x, _ = load("htru2_test.csv", True)
    valid_t, test_t = torch.from_numpy(valid_x), torch.from_numpy(test_x)
    sizes = layer_sizes(5, 32, 8, 8)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    batch, n = 16, train_x.shape[0]
    steps = math.ceil(n / batch)
    every = steps // 11
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps + 1,
                                                       eta_min=0.001)
    loss_fn = nn.MSELoss()

    def validate():
        with torch.no_grad():
            pv = torch.cat([model(c) for c in torch.split(valid_t, batch)]).numpy()
            pt = torch.cat([model(c) for c in torch.split(test_t, batch)]).numpy()
        err_v = metrics.reconstruction_errors(pv, valid_x, "MSE")
        metrics.reconstruction_errors(pt, test_x, "MSE")
        mean, std = metrics.zscore_stats(err_v, valid_y)
        sweep = metrics.threshold_sweep(metrics.zscores(err_v, mean, std), valid_y, 8000)
        return metrics.best_threshold(sweep.f1, sweep.th)

    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n)
        for k in range(steps):
            x = train_x[order[k * batch:(k + 1) * batch]]
            opt.zero_grad()
            loss = loss_fn(model(x), x)
            loss.backward()
            opt.step()
            sched.step()
            if (k + 1) % every == 0 or k == steps - 1:
                validate()
    return (time.perf_counter() - t0) / epochs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args()
    if not REFERENCE.is_dir():
        sys.exit(f"HTRU2 data not found at {REFERENCE}")
    mine = ours(args.epochs, args.threads)
    print(f"implicit-nn (numba cpu): {mine:8.3f} s/epoch  ({args.epochs} epochs, "
          f"{args.threads} threads)")
    if args.skip_torch:
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: pip install torch  (comparison skipped)")
        return
    theirs = torch_loop(args.epochs, args.threads)
    print(f"pytorch cpu            : {theirs:8.3f} s/epoch")
    print(f"ratio ours/torch       : {mine / theirs:8.3f}  (target <= 0.333)")


if __name__ == "__main__":
    main()
