"""Reproduce the paper's HTRU2 experiment for one network family and size.

Writes the network (`implicit-nn make-config`), then for run k = 1..RUNS a parameter file with the
historical settings (seed = k + 2024; reference/README.md "How these runs were made") and trains it
with `implicit-nn train`, and finally prints `implicit-nn summarize` over the runs. DATA_DIR must
hold htru2smote_train.csv, htru2smote_valid.csv and htru2_test.csv (see examples/README.md).

    python examples/htru2_paper.py DATA_DIR --family v1 --hidden-layer-num 5 --start-layer 32 \
        --latent-num 8 [--epochs 20] [--runs 10] [--learn-num 13164] [--out results/v1_5_32_8]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from implicit_nn.params import SCHEMA, Params, write_params
from implicit_nn.tools.make_config import make_autoencoder

TRAIN, VALID, TEST = "htru2smote_train.csv", "htru2smote_valid.csv", "htru2_test.csv"
LEARN_NUM, VALID_NUM, TEST_NUM = 13164, 2929, 1790
INPUT_NUM, BATCH, SFREQ = 8, 16, 11
ACT_TYPE = {"v0": 3, "v1": 9, "v2": 9}
CLI = (sys.executable, "-m", "implicit_nn")     # `implicit-nn` of this very interpreter


def run_params(data, tag, neuron_num, family, run, epochs, learn_num):
    """The historical simulparams.dat of run `run`, outputs named as eval.py expects.

    Paths are relative to the output folder (the run's working folder): the original's file
    names are at most 99 characters."""
    net = Path("network")
    values = dict(
        seed=run + 2024, shuffle_num=100000, thread_num=2, tol_fixit=1.0e-5,
        maxiter_grad=epochs, maxiter_fix=50, initdx=1.0, sfreq=SFREQ,
        input_name=str(data / TRAIN), input_name_valid=str(data / VALID),
        input_name_test=str(data / TEST),
        output_name=f"results_{tag}_{run}.dat",
        predict_name_valid=f"predict_valid_{tag}_{run}.dat",
        predict_name_test=f"predict_test_{tag}_{run}.dat",
        test_log=f"test_metrics_{tag}_{run}.dat",
        test_log_final=f"test_metrics_final_{tag}_{run}.dat",
        learn_num=learn_num, valid_num=VALID_NUM, test_num=TEST_NUM, mini_batch_size=BATCH,
        neuron_num=neuron_num, input_num=INPUT_NUM, output_num=INPUT_NUM,
        shared_weights_num=0, shared_biases_num=0,
        **{f"{kind}_datas": str(net / f"{kind}_autoencoder_{tag}.dat")
           for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b")},
        alpha=1.0e-4, train_lossfunction_type="MSE", valid_metric_type="F1",
        valid_metric_type_2="F1", range_div=8000, optimizer=1, nesterov=1, grad_alpha=0.01,
        adam_alpha=1.0e-3, adam_beta1=0.9, adam_beta2=0.999, adam_eps=1.0e-8, lr_scheduler=2,
        cyclic_momentum=0, pcr=1.0, base_momentum=0.85, max_momentum=0.95, div_factor=10.0,
        final_div_factor=10.0, step_size=1, lr_gamma=0.5, early_stopping=0,
        ff_optimization=1 if family == "v0" else 0, clipping=0, clipping_threshold=1.0,
        loaddatas=0, load_backup=f"backup_best_autoencoder_{tag}_{run}.dat",
        save_best_model=f"backup_best_autoencoder_{tag}_{run}.dat")
    return Params(**{name: (np.float32(values[name]) if kind == "f32" else values[name])
                     for name, kind in SCHEMA})


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="folder holding the HTRU2 splits")
    p.add_argument("--family", choices=sorted(ACT_TYPE), default="v0")
    p.add_argument("--hidden-layer-num", type=int, default=5)
    p.add_argument("--start-layer", type=int, default=32)
    p.add_argument("--latent-num", type=int, default=8)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--learn-num", type=int, default=LEARN_NUM,
                   help="use only the first N training rows (quick trials; default all)")
    p.add_argument("--backend", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default results/<family>_<M>_<S>_<L>)")
    args = p.parse_args(argv)
    if not 1 <= args.runs or not 1 <= args.epochs:
        p.error("--runs and --epochs must be at least 1")
    if not SFREQ * BATCH <= args.learn_num <= LEARN_NUM:
        p.error(f"--learn-num must be between {SFREQ * BATCH} and {LEARN_NUM}")
    missing = [name for name in (TRAIN, VALID, TEST) if not (args.data / name).is_file()]
    if missing:
        p.error(f"{args.data} lacks {', '.join(missing)} (see examples/README.md)")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = args.out or Path("results") / (f"{args.family}_{args.hidden_layer_num}_"
                                         f"{args.start_layer}_{args.latent_num}")
    tag, layers, neuron_num, _ = make_autoencoder(
        out / "network", args.family, args.hidden_layer_num, args.start_layer, args.latent_num,
        INPUT_NUM, ACT_TYPE[args.family])
    data = min(args.data.resolve(), Path(os.path.relpath(args.data.resolve(), out.resolve())),
               key=lambda path: len(str(path)))
    print(f"{tag}: layers {layers}, {neuron_num} neurons, {args.runs} runs of {args.epochs} epochs")
    for run in range(1, args.runs + 1):
        params_path = out / f"simulparams_{tag}_{run}.dat"
        write_params(params_path, run_params(data, tag, neuron_num, args.family, run,
                                             args.epochs, args.learn_num))
        for log in ("results", "test_metrics", "test_metrics_final"):   # logs are appended to
            (out / f"{log}_{tag}_{run}.dat").unlink(missing_ok=True)
        print(f"run {run}/{args.runs} (seed {run + 2024})", flush=True)
        if subprocess.run([*CLI, "train", params_path.name, "--quiet", "--backend",
                           args.backend], cwd=out).returncode:
            return f"htru2_paper: run {run} failed (see the error above)"
    return subprocess.run([*CLI, "summarize", str(out)]).returncode


if __name__ == "__main__":
    sys.exit(main())
