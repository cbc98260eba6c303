"""Seconds per epoch of the paper's HTRU2 jobs: numba engine (faithful and block solver, 1 and 2
threads, minibatch 16/64/256) side by side with the PyTorch peer, as ratios.

Jobs: the v0 (PERT path) and v1 (implicit, arctan latent block) autoencoders of all six sizes with
the published runs' settings (13164 SMOTE training rows, validation 2929 + test 1790 rows predicted
11-12 times per epoch, SGD + Nesterov, cosine schedule), from the seeded initial weights. Ours runs
in this process through `implicit_nn.driver` as `implicit-nn train` does; a measurement is the
wall time of its epoch loop (every training step and validation, start-up and final evaluation
excluded) divided by its epochs. The peer is ../shared/tools/peers/torch_deq_peer.py in a child
process (its own loop time per epoch, the same work), always on one thread as its README advises
for a 2-core machine (PyTorch's two threads stall on tiny products: 18× slower when measured); its
column is left out when torch does not import (`pip install -e '.[bench]'`). Every
configuration of a job runs once per round, rounds alternate, and the tables give min and median over the rounds: measure side by side, quote ratios.

    python benchmarks/bench_implicit.py [--families v0 v1] [--sizes 5_32_8 ...] [--mb 16 64 256]
        [--threads 1 2] [--solvers faithful blocks] [--epochs 1] [--repeats 3] [--no-peer]
    python benchmarks/bench_implicit.py --quick      # v1 (5;32;8), minibatch 16, 1 repeat

Tables: s/epoch (min/median) per job, minibatch and threads; ratios of the medians (ours/peer,
blocks/faithful, 2 threads/1 thread); the per-sample cost at each minibatch relative to
minibatch 16. Nothing is asserted.
"""
import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"
PEER = SHARED / "tools" / "peers" / "torch_deq_peer.py"
SIZES = ("5_32_8", "5_32_16", "5_64_8", "5_64_16", "7_64_8", "7_64_16")
SOLVERS = ("faithful", "blocks")


def tag(family, size):
    hidden, first, latent = size.split("_")
    return f"{family}_M{hidden}_S{first}_L{latent}-I8"


def job_params(family, size, mb, threads, epochs, folder):
    """The published runs' parameters (reference/README.md) for one job, outputs in `folder`."""
    from implicit_nn import make_params
    t, cfg, data = tag(family, size), REFERENCE / "configs" / family, REFERENCE / "data"
    graph = cfg / f"graph_autoencoder_{t}.dat"
    out = Path(folder)
    return make_params(
        seed=2025, thread_num=threads, maxiter_grad=epochs, sfreq=11, mini_batch_size=mb,
        input_name=data / "htru2smote_train.csv", input_name_valid=data / "htru2smote_valid.csv",
        input_name_test=data / "htru2_test.csv", output_name=out / "results.dat",
        predict_name_valid=out / "predict_valid.dat", predict_name_test=out / "predict_test.dat",
        test_log=out / "test_metrics.dat", test_log_final=out / "test_metrics_final.dat",
        save_best_model=out / "backup.dat", learn_num=13164, valid_num=2929, test_num=1790,
        neuron_num=graph.read_text().count("\n"), input_num=8, output_num=8,
        graph_datas=graph, logic_datas=cfg / f"logic_autoencoder_{t}.dat",
        fixwb_datas=cfg / f"fixwb_autoencoder_{t}.dat",
        shared_w_datas=cfg / f"shared_w_autoencoder_{t}.dat",
        shared_b_datas=cfg / f"shared_b_autoencoder_{t}.dat",
        ff_optimization=1 if family == "v0" else 0)


def ours(family, size, mb, threads, solver, epochs):
    """Seconds per epoch of our epoch loop."""
    from implicit_nn import driver

    class TimedRun(driver.Run):
        def loop(self):
            start = time.perf_counter()
            super().loop()
            self.loop_seconds = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as folder:
        params = job_params(family, size, mb, threads, epochs, folder)
        run = TimedRun(params, "cpu", True, "bench", solver=solver)
        run.execute()
        return run.loop_seconds / epochs


def peer(family, size, mb, epochs):
    """Seconds per epoch of the PyTorch peer (its own epoch-loop time), one thread."""
    command = [sys.executable, str(PEER), "--ref", str(REFERENCE), "--family", family,
               "--model", size, "--epochs", str(epochs), "--mb", str(mb), "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["s_per_epoch"]


def torch_available():
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def configurations(args, with_peer):
    """(job key, column, runner) for every measurement of one round, in a fixed order."""
    for family, size, mb in itertools.product(args.families, args.sizes, args.mb):
        for threads in args.threads:
            job = (family, size, mb, threads)
            solvers = args.solvers if family != "v0" else ("faithful",)   # v0: the PERT path
            for solver in solvers:
                yield job, solver, (lambda j=job, s=solver: ours(*j, s, args.epochs))
        if with_peer:       # one peer measurement per round, the same for every thread row
            yield (family, size, mb, 0), "torch", (lambda f=family, z=size, m=mb:
                                                    peer(f, z, m, args.epochs))


def load():
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=["v0", "v1"], choices=("v0", "v1"))
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    ap.add_argument("--mb", nargs="+", type=int, default=[16, 64, 256])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=SOLVERS)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (measurements per cell)")
    ap.add_argument("--no-peer", action="store_true", help="leave the PyTorch column out")
    ap.add_argument("--quick", action="store_true", help="v1 (5;32;8), minibatch 16, 1 round")
    ap.add_argument("--json", help="also write every measurement to this file")
    args = ap.parse_args()
    if args.quick:
        args.families, args.sizes, args.mb, args.repeats = ["v1"], ["5_32_8"], [16], 1
    if not REFERENCE.is_dir():
        sys.exit(f"HTRU2 data and configs not found at {REFERENCE}")
    with_peer = not args.no_peer and PEER.is_file() and torch_available()
    if not args.no_peer and not with_peer:
        print("PyTorch peer skipped: torch does not import (pip install -e '.[bench]') or "
              f"{PEER} is missing")
    cells = {}
    loads = [load()]
    plan = list(configurations(args, with_peer))
    for _, solver, run in plan:            # warm-up: numba cache load / compile, torch import
        if solver != "torch":
            run()
            break
    started = time.perf_counter()
    for repeat in range(args.repeats):
        for job, column, run in plan:
            cells.setdefault((job, column), []).append(run())
        loads.append(load())
        print(f"round {repeat + 1}/{args.repeats} done, {time.perf_counter() - started:.0f} s, "
              f"load average {loads[-1]:.1f}", file=sys.stderr, flush=True)
    report(args, cells, with_peer, loads)
    if args.json:
        Path(args.json).write_text(json.dumps(
            [dict(family=j[0], size=j[1], mb=j[2], threads=j[3], column=c, seconds=v)
             for (j, c), v in cells.items()], indent=1))


def key(job, column):
    """The cell of a column in a job's row: the peer's is one per (family, size, minibatch)."""
    return (job[:3] + (0,) if column == "torch" else job), column


def report(args, cells, with_peer, loads):
    columns = [s for s in args.solvers] + (["torch"] if with_peer else [])
    median = {k: statistics.median(v) for k, v in cells.items()}
    print(f"\nseconds per epoch (min / median of {args.repeats}); load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs")
    head = f"{'job':<12}{'mb':>5}{'thr':>4}" + "".join(f"{c:>18}" for c in columns)
    ratios = []
    if with_peer:
        ratios += [(s, "torch") for s in args.solvers]
    if "blocks" in args.solvers and "faithful" in args.solvers:
        ratios.append(("blocks", "faithful"))
    head += "".join(f"{a + '/' + b:>18}" for a, b in ratios)
    print(head)
    for family, size, mb, threads in itertools.product(args.families, args.sizes, args.mb,
                                                       args.threads):
        job = (family, size, mb, threads)
        row = f"{family + ' ' + size:<12}{mb:>5}{threads:>4}"
        for c in columns:
            v = cells.get(key(job, c))
            row += f"{min(v):>9.3f} /{statistics.median(v):>6.3f}" if v else f"{'-':>18}"
        for a, b in ratios:
            if key(job, a) in median and key(job, b) in median:
                row += f"{median[key(job, a)] / median[key(job, b)]:>18.3f}"
            else:
                row += f"{'-':>18}"
        print(row)
    print_scaling(args, median, columns)


def print_scaling(args, median, columns):
    """2 threads / 1 thread and per-sample cost relative to minibatch 16 (medians)."""
    if 1 in args.threads and 2 in args.threads:
        print("\n2 threads / 1 thread (median s/epoch)")
        for family, size, mb in itertools.product(args.families, args.sizes, args.mb):
            parts = [f"{c} {median[(family, size, mb, 2), c] / median[(family, size, mb, 1), c]:.2f}"
                     for c in columns if c != "torch" and ((family, size, mb, 1), c) in median]
            print(f"  {family} {size} mb {mb:<4} " + "  ".join(parts))
    if 16 in args.mb and len(args.mb) > 1:
        print("\nper-sample cost relative to minibatch 16 (an epoch is the same samples)")
        for family, size, threads in itertools.product(args.families, args.sizes, args.threads):
            for c in columns:
                base = median.get(key((family, size, 16, threads), c))
                if base is None:
                    continue
                parts = [f"mb {mb}: {median[key((family, size, mb, threads), c)] / base:.2f}"
                         for mb in args.mb if mb != 16 and key((family, size, mb, threads), c) in median]
                print(f"  {family} {size} {threads} thr {c:<9} " + "  ".join(parts))


if __name__ == "__main__":
    main()
