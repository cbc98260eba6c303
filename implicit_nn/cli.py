"""Command line: `implicit-nn [train|predict|check|gradcheck|make-config|summarize|plot]`.

Bare `implicit-nn` behaves as the original `./neural`: train with ./inputs/simulparams.dat.
Every user-facing failure is an InputError (or OSError) printed as one line; exit status 1.
"""

import argparse
import importlib
import sys

from .errors import InputError

DEFAULT_PARAMS = "./inputs/simulparams.dat"

# command -> (module, function); modules are imported only when their command runs
HANDLERS = {
    "train": ("implicit_nn.driver", "run_train"),
    "predict": ("implicit_nn.driver", "run_predict"),
    "check": ("implicit_nn.check", "run_check"),
    "gradcheck": ("implicit_nn.gradcheck", "run_gradcheck"),
    "make-config": ("implicit_nn.tools.make_config", "run_make_config"),
    "summarize": ("implicit_nn.tools.summarize", "run_summarize"),
    "plot": ("implicit_nn.tools.plot", "run_plot"),
}


def _add_run_options(p):
    p.add_argument("params", nargs="?", default=DEFAULT_PARAMS,
                   help="parameter file (default: %(default)s)")
    p.add_argument("--backend", choices=("auto", "cpu", "gpu", "reference"), default="auto",
                   help="engine: GPU when CuPy and a device are present (auto), numba CPU, GPU, "
                        "or the slow plain-NumPy reference")
    p.add_argument("--quiet", action="store_true", help="no console progress output")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="implicit-nn",
        description="Train implicit neural networks (drop-in port of imp_network's ./neural).")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("train", help="train as ./neural does (default command)")
    _add_run_options(p)

    p = sub.add_parser("predict", help="load a backup and write predictions and final metrics only")
    p.add_argument("--load", required=True, metavar="BACKUP", help="backup file to load")
    _add_run_options(p)

    p = sub.add_parser("check", help="read and validate every input file, print a summary")
    p.add_argument("params", nargs="?", default=DEFAULT_PARAMS)

    p = sub.add_parser("gradcheck", help="adjoint gradient vs central finite differences")
    p.add_argument("params", nargs="?", default=DEFAULT_PARAMS)
    p.add_argument("--samples", type=int, default=4, help="training samples used (default 4)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest accepted relative error (default 1e-3)")

    p = sub.add_parser("make-config", help="write the network files of a paper network family")
    p.add_argument("kind", choices=("autoencoder",))
    p.add_argument("--family", default="v0", help="v0, v1 or v2 (default v0)")
    p.add_argument("--hidden-layer-num", type=int, default=5)
    p.add_argument("--start-layer", type=int, default=64)
    p.add_argument("--latent-num", type=int, default=8)
    p.add_argument("--input-num", type=int, default=8)
    p.add_argument("--act-type", type=int, default=9)
    p.add_argument("--out", default=".", help="output folder (default: current folder)")

    p = sub.add_parser("summarize", help="eval.py's table over a folder of runs")
    p.add_argument("dir", nargs="?", default=".")
    p.add_argument("--metric", default="VF1", help="validation column choosing the best run")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")

    p = sub.add_parser("plot", help="training curves or a ROC curve as PNG")
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--roc", nargs=2, metavar=("PREDICT_VALID", "VALID_DATA"))
    p.add_argument("-o", "--output", default=None, help="PNG file to write")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        argv = ["train"]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["train"] + argv)
    module_name, func_name = HANDLERS[args.command]
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return handler(args) or 0
    except InputError as exc:
        print(f"implicit-nn: error: {exc}", file=sys.stderr)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else ""
        print(f"implicit-nn: error: {name}: {exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("implicit-nn: interrupted", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
