"""Command line: `implicit-nn COMMAND` (train, predict, check, gradcheck, make-config, summarize,
plot, sweep, compile).

Bare `implicit-nn` behaves as the original `./neural`: train with ./inputs/simulparams.dat; so does
`implicit-nn [train options] [PARAMS]` without the word `train`.
Every user-facing failure is an InputError (or OSError) printed as one line; exit status 1.
"""

import argparse
import atexit
import gc
import importlib
import os
import sys
import threading

from . import __version__
from .solver import SOLVERS
from .errors import InputError

DEFAULT_PARAMS = "./inputs/simulparams.dat"
PARAMS_HELP = "the original's 58-entry simulparams.dat (default: %(default)s)"

# command -> (module, function); modules are imported only when their command runs
HANDLERS = {
    "train": ("implicit_nn.api", "run_train"),
    "predict": ("implicit_nn.api", "run_predict"),
    "check": ("implicit_nn.check", "run_check"),
    "gradcheck": ("implicit_nn.gradcheck", "run_gradcheck"),
    "make-config": ("implicit_nn.tools.make_config", "run_make_config"),
    "summarize": ("implicit_nn.tools.summarize", "run_summarize"),
    "plot": ("implicit_nn.tools.plot", "run_plot"),
    "sweep": ("implicit_nn.tools.sweep", "run_sweep"),
    "compile": ("implicit_nn.compiling", "run_compile"),
}
TOP_LEVEL_FLAGS = ("-h", "--help", "--version")


def _add_params(p):
    p.add_argument("params", nargs="?", default=DEFAULT_PARAMS, metavar="PARAMS", help=PARAMS_HELP)


def _add_run_options(p):
    _add_params(p)
    p.add_argument("--backend", choices=("auto", "cpu", "gpu", "reference"), default="auto",
                   help="engine: GPU when CuPy and a device are present, else numba CPU (auto, "
                        "the default); numba CPU; CuPy GPU; or the slow plain-NumPy reference")
    p.add_argument("--quiet", action="store_true",
                   help="print nothing on the console (the output files are the same)")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="also write solver statistics, one row per validation (and one for "
                        "the final predictions): iterations, maxiter hits, residuals of the "
                        "forward and adjoint fixed points; JSON lines for .jsonl/.json, else CSV")
    add_solver_options(p)


def add_solver_options(p):
    """The fixed-point solver (solver.py, docs/solvers.md); none given: the original's."""
    group = p.add_argument_group("fixed-point solver (default: the original's plain iteration)")
    group.add_argument("--solver", choices=SOLVERS, default="faithful",
                       help="faithful: the original's whole-network sweeps (the default: outputs "
                            "identical to the original's); anderson: Anderson acceleration of "
                            "the forward and adjoint fixed points (cpu and reference backends, "
                            "docs/solvers.md); blocks: the cyclic blocks iterated one at a time "
                            "in topological order, the acyclic parts evaluated once (equal to "
                            "tol_fixit, much faster; cpu backend; IF/IB are the iterations of "
                            "the largest block)")
    group.add_argument("--anderson-m", type=int, default=None, metavar="M",
                       help="with --solver anderson: residual differences mixed (the last M+1 "
                            "iterates, default 5)")
    group.add_argument("--anderson-beta", type=float, default=None, metavar="BETA",
                       help="with --solver anderson: damping in (0, 1] (default 1: undamped)")
    group.add_argument("--anderson-start", type=int, default=None, metavar="K",
                       help="with --solver anderson: plain sweeps before the mixing starts "
                            "(default 8)")
    group.add_argument("--tol-backward", type=float, default=None, metavar="TOL",
                       help="stop the adjoint at this max-norm (default: tol_fixit)")
    group.add_argument("--maxiter-backward", type=int, default=None, metavar="N",
                       help="at most N adjoint sweeps (default: maxiter_fix)")


def _add_metric(p):
    p.add_argument("--metric", default="VF1", metavar="COLUMN",
                   help="validation column that picks each configuration's best run: VF1 (the "
                        "default, as the paper's published tables), VAUC (eval.py's own default), "
                        "VMCC, ...; the leading V may be left out")


def _command(sub, name, **kwargs):
    return sub.add_parser(name, prog=f"implicit-nn {name}", **kwargs)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="implicit-nn",
        usage="implicit-nn [-h] [--version] {train,predict,check,gradcheck,make-config,"
              "summarize,plot,sweep,compile} ...\n       implicit-nn [train options] [PARAMS]",
        description="Train implicit neural networks (drop-in port of imp_network's ./neural). "
                    "Without a command, the arguments are train's: bare `implicit-nn` trains "
                    "with ./inputs/simulparams.dat as ./neural did. `implicit-nn COMMAND -h` "
                    "describes each command.")
    parser.add_argument("--version", action="version", version=f"implicit-nn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(sub, "train", help="train as ./neural does (the default command)",
                 description="Train with a parameter file and write the original's logs, "
                             "predictions and best backup.")
    _add_run_options(p)
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="every N minibatches, write a checkpoint from which --resume continues "
                        "the run bit for bit (default 0: none)")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="checkpoint file (default: OUTPUT_NAME.ckpt, or the --resume file)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue a killed run from its checkpoint (same PARAMS, --backend and "
                        "--stats); rows its logs got after the checkpoint are written again")

    p = _command(sub, "predict", help="load a backup and write predictions and final metrics only",
                 description="The original's load mode (loaddatas 1, maxiter_grad 0): no "
                             "training, predictions and final metrics from BACKUP.")
    p.add_argument("--load", required=True, metavar="BACKUP",
                   help="backup file to load (replaces load_backup of PARAMS)")
    _add_run_options(p)

    p = _command(sub, "check", help="read and validate every input file, print a summary",
                 description="Read the parameter file and every file it names as training "
                             "would, report the first problem or a summary; trains nothing.")
    _add_params(p)
    p.add_argument("--contraction", action="store_true",
                   help="also estimate the spectral radius of the fixed-point map's Jacobian on "
                        "the cyclic part at the training data: do the forward and adjoint "
                        "iterations converge, and how fast (docs/diagnostics.md)")
    p.add_argument("--load", default=None, metavar="BACKUP",
                   help="with --contraction: the parameters of this backup (default: the "
                        "parameter file's load_backup if loaddatas is 1, else the seeded start)")
    p.add_argument("--samples", type=int, default=256, metavar="N",
                   help="with --contraction: training rows used, from the start (default 256)")

    p = _command(sub, "gradcheck", help="adjoint gradient vs central finite differences",
                 description="Compare the adjoint (fixed-point) gradient with central "
                             "finite differences on the network and data of PARAMS.")
    _add_params(p)
    p.add_argument("--samples", type=int, default=4, metavar="N",
                   help="training samples used, from the start of the file (default 4)")
    p.add_argument("--tolerance", type=float, default=1e-3, metavar="REL",
                   help="largest accepted relative error (default 1e-3)")
    add_solver_options(p)

    p = _command(sub, "make-config", help="write the network files of a paper network family",
                 description="Write the five network files of the paper's autoencoders "
                             "(spec: conf_autoencoder.py); the defaults give the paper's "
                             "files for each family.")
    p.add_argument("kind", choices=("autoencoder",), help="network kind (only autoencoder)")
    p.add_argument("--family", default="v0", metavar="v0|v1|v2",
                   help="v0 (feed-forward), v1 (latent neurons connected to each other: implicit) "
                        "or v2 (v1 with a sigmoid gate on each latent neuron); default v0")
    p.add_argument("--hidden-layer-num", type=int, default=5, metavar="M",
                   help="M: the encoder has M // 2 layers before the latent layer (default 5)")
    p.add_argument("--start-layer", type=int, default=64, metavar="S",
                   help="S: width of the first encoder layer, halved per layer (default 64)")
    p.add_argument("--latent-num", type=int, default=8, metavar="L", help="latent layer width (default 8)")
    p.add_argument("--input-num", type=int, default=8, metavar="I",
                   help="input width = output width (default 8, as HTRU2)")
    p.add_argument("--act-type", type=int, default=None, metavar="ID",
                   help="activation id of the hidden neurons (docs/activations.md); default: "
                        "the paper's, 3 (ReLU) for v0 and 9 (arctan) for v1 and v2")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current folder)")

    p = _command(sub, "summarize", help="eval.py's table over a folder of runs",
                 description="Group the final-metrics files under DIR (sub-folders "
                             "included) by tag, pick each tag's best run and print every "
                             "run, the best, the mean and the 95 % interval.")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR",
                   help="folder holding test_metrics_final_<tag>_<run>.dat files (default: .)")
    _add_metric(p)
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    p = _command(sub, "plot", help="training curves, ROC curve or confusion matrix as PNG",
                 description="Training curves of results logs; --roc: ROC curve of a "
                       "prediction file; --confusion: the test confusion matrix of the "
                       "best run of a folder, as eval.py --conf_matrix drew it.")
    p.add_argument("files", nargs="*", metavar="RESULTS_LOG", help="results logs (output_name)")
    p.add_argument("--stats", default=None, metavar="FILE",
                   help="solver statistics of a --stats file: iterations and residuals per "
                        "validation")
    p.add_argument("--roc", nargs=2, metavar=("PREDICT_VALID", "VALID_DATA"),
                   help="ROC curve of the reconstruction RMSE against the labels")
    p.add_argument("--confusion", nargs=2, metavar=("DIR", "TEST_DATA"),
                   help="confusion matrix of the best run under DIR (one configuration) on "
                        "the labelled test file its test predictions were made from")
    _add_metric(p)
    p.add_argument("-o", "--output", default=None, metavar="PNG",
                   help="PNG file to write (default: training_curves.png beside the first log, "
                        "roc.png beside PREDICT_VALID, confusion_matrix.png in DIR, "
                        "solver_stats.png beside the --stats file)")

    p = _command(sub, "sweep", help="train a grid of configurations x seeds in parallel (Ray)",
                 description="Train every configuration x seed of a sweep file (docs/sweep.md), "
                       "each run in its own folder, in parallel on this machine or on a "
                       "Ray cluster; finished runs are skipped, so a killed sweep resumes. "
                       "Needs the optional extra: pip install 'implicit-nn[sweep]'.")
    p.add_argument("sweep_file", metavar="SWEEP", help="sweep file (TOML)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: the sweep file's `out`, else sweep_<name>)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="runs at a time, one CPU and one thread each (default: this machine's "
                        "CPU count, or the cluster's with --address)")
    p.add_argument("--address", default=None, metavar="ADDRESS",
                   help="an existing Ray cluster, e.g. ray://head:10001 (default: Ray started "
                        "inside this process); every node must see the same paths")
    p.add_argument("--backend", choices=("auto", "cpu", "gpu", "reference"), default="cpu",
                   help="engine of every run (default cpu)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs and which are finished; train nothing, write nothing")

    _command(sub, "compile", help="compile the CPU engine's kernels now (make install does)",
             description="Compile every kernel a training or a prediction on the CPU engine "
                         "calls into numba's cache (about half a minute, once after an install "
                         "or an update), so that no run waits for it; a run that finds them "
                         "missing compiles them itself and says so.")
    return parser


def _with_command(argv):
    """argv with `train` put in front when it names no command (./neural's habit)."""
    if argv and (argv[0] in HANDLERS or argv[0] in TOP_LEVEL_FLAGS):
        return argv
    return ["train", *argv]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(_with_command(argv))
    module_name, func_name = HANDLERS[args.command]
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return handler(args) or 0
    except InputError as exc:
        print(f"implicit-nn: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except OSError as exc:
        error = InputError(str(exc.strerror or exc), "" if exc.filename is None else exc.filename)
        print(f"implicit-nn: error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("implicit-nn: interrupted", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())


# allocations between two young-generation collections in a command (Python's default: 700)
COLLECT_EVERY = 20_000


def run():
    """The process entry (`implicit-nn`, `python -m implicit_nn`): main(), then an exit without
    the garbage collector's passes over every object left (numba's compiler objects are most of
    them): those took 0.2 s of every command, 0.8 s on a busy machine. Files are closed and
    atexit handlers run as before (`leave`); the collector's search for cycles and the
    interpreter's teardown are skipped.
    During main the collector runs every COLLECT_EVERY allocations instead of 700: importing
    numba and loading its cache allocates some 150 000 objects, and 230 collections over them
    took 0.05-0.1 s of a prediction; cycles are still collected, the peak memory is the same."""
    gc.set_threshold(COLLECT_EVERY, 10, 10)
    status = main()
    gc.disable()
    gc.freeze()
    return leave(status)


def leave(status):
    """End the process as a normal exit would, less the interpreter's teardown: the atexit
    handlers run and the standard streams are flushed, then os._exit, instead of freeing every
    module and object one by one (0.02-0.03 s of a prediction). Where another Python thread
    still runs or a stream cannot be flushed, it returns `status` for the normal exit."""
    if threading.active_count() > 1:
        return status
    atexit._run_exitfuncs()          # and unregisters them: a normal exit would not run them again
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):    # a closed pipe: the normal exit reports it as before
        return status
    os._exit(status)

