"""Whole-process start-up times: cold (empty numba cache) and warm runs of the command line.

What a user waits for, from the process's start to its exit: `implicit-nn check`, `predict --load`
and short trainings of the bundled example (inputs/simulparams.dat, the implicit v1 network that
`make run` trains) and of the paper's v0 (5;32;8) HTRU2 job (published run 1, needs
../shared/reference). "cold": each repeat gets its own empty NUMBA_CACHE_DIR, so every kernel
it needs is compiled in the run; "installed": the same, but `implicit-nn compile` (the last step
of `make install`) fills the cache first, as after an install (its own times on a row of their
own); "warm" runs share one filled cache.
Python's bytecode cache is on in every run (PYTHONDONTWRITEBYTECODE is removed), as in a user's
interpreter, and `implicit-nn compile` writes it: without it every start compiles the package's
modules again (0.07 s).
Reported: min and median wall seconds of the repeats, the median CPU seconds (user + system of the
child, steadier than wall time on a shared machine) and the issue's target where it has one.

Two floor cases time what every numba command pays before any of its own work: "floor numpy"
(the interpreter and `import numpy`) and "floor numba" (that, `import numba` and one call of a
cached one-line `njit` function: numba's first cache load refreshes its whole target context),
with the garbage collector set as `implicit-nn` sets it (cli.run).

With `--vs PYTHON` every case also runs under a second interpreter (another checkout's venv), the
two alternating run by run, and the median of the per-pair ratios A/B is printed.

    python benchmarks/bench_startup.py [--repeats 5] [--cold-repeats 3] [--cases ...]
                                       [--cold ...] [--installed ...] [--vs PY]
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
MODEL, RUN = "v0_5_32_8", 1
# case name -> (what it runs, target wall seconds of the issue or None)
CASES = {
    "check example": ("check", None),
    "predict example": ("predict", None),
    "train 0 example": ("train0", None),
    "train 2 example": ("train2", None),
    "train 10 example": ("train10", None),   # `make run`'s training
    "check v0": ("check", None),
    "predict v0": ("predict", 0.6),
    "train 0 v0": ("train0", None),
    "train 2 v0": ("train2", None),
    "train 20 v0": ("train20", 1.2),
    "floor numpy": ("floor", None),
    "floor numba": ("floor", None),
}
FLOOR_CODE = {      # the collector set as cli.run sets it
    "floor numpy": "import gc\ngc.set_threshold(20000, 10, 10)\nimport numpy\n"
                   "gc.disable()\ngc.freeze()\n",
    "floor numba": "import gc\ngc.set_threshold(20000, 10, 10)\nimport numpy, floor_kernel\n"
                   "floor_kernel.one(numpy.zeros(3))\ngc.disable()\ngc.freeze()\n",
}
FLOOR_KERNEL = "import numba\n\n\n@numba.njit(cache=True)\ndef one(x):\n    return x[0] + 1.0\n"
COLD, INSTALLED = "cold", "installed"
COLD_TARGETS = {(INSTALLED, "train 10 example"): 8.0}
DEFAULT_CASES = ("check example", "predict example", "train 2 example", "train 10 example",
                 "check v0", "predict v0", "train 2 v0", "train 20 v0")
DEFAULT_COLD = ("train 10 example", "predict v0", "train 2 v0")
DEFAULT_INSTALLED = ("train 10 example",)


def example_params(folder, epochs):
    """inputs/simulparams.dat with absolute input paths, outputs in `folder`, `epochs` epochs."""
    lines = []
    for line in (ROOT / "inputs" / "simulparams.dat").read_text().splitlines():
        name, _, value = line.partition(" ")
        value = value.strip()
        if name == "maxiter_grad":
            value = str(epochs)
        elif value.startswith("examples/"):
            value = str(ROOT / value)
        elif value.startswith("outputs/"):
            value = str(folder / value[len("outputs/"):])
        lines.append(f"{name:<27}{value}" if name else "")
    return "\n".join(lines) + "\n"


def v0_params(folder, epochs):
    from test_golden_load import historical_params
    return historical_params(MODEL, RUN, str(folder), maxiter_grad=epochs)


def v0_backup():
    from conftest import REFERENCE
    return REFERENCE / "inference" / MODEL / f"backup_best_autoencoder_v0_M5_S32_L8-I8_{RUN}.dat"


def prepare(case, folder, python, env):
    """The argv after `python` of one case, set up in `folder`."""
    what, _ = CASES[case]
    if what == "floor":          # its kernel at one path per cache, so that warm runs load it
        kernel = Path(env["NUMBA_CACHE_DIR"]).parent / f"floor-{Path(env['NUMBA_CACHE_DIR']).name}"
        kernel.mkdir(exist_ok=True)
        (kernel / "floor_kernel.py").write_text(FLOOR_KERNEL)
        return ["-c", f"import sys\nsys.path.insert(0, {str(kernel)!r})\n" + FLOOR_CODE[case]]
    return ["-m", "implicit_nn", *_implicit_nn_argv(case, what, folder, python, env)]


def _implicit_nn_argv(case, what, folder, python, env):
    example = case.endswith("example")
    epochs = int(what[5:]) if what.startswith("train") else 0
    params = folder / "simulparams.dat"
    params.write_text((example_params if example else v0_params)(folder, epochs))
    if what == "check":
        return ["check", str(params)]
    if what.startswith("train"):
        return ["train", "--backend", "cpu", str(params)]
    if example:             # a backup of the example: two epochs of training
        backup = folder / "backup_best_autoencoder_small_1.dat"
        params.write_text(example_params(folder, 2))
        _run([python, "-m", "implicit_nn", "train", "--quiet", "--backend", "cpu", str(params)],
             folder, env)
    else:
        backup = v0_backup()
    return ["predict", "--backend", "cpu", "--load", str(backup), str(params)]


def _run(argv, cwd, env):
    """(wall seconds, CPU seconds) of one whole process; its output is discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


class Side:
    """One interpreter under test, with its own warm numba cache."""

    def __init__(self, python, scratch, label):
        self.python, self.label = python, label
        self.warm_cache = scratch / f"cache-{label}"
        self.scratch = scratch
        self.install_times = []             # (wall, cpu) of `implicit-nn compile` runs

    def env(self, cache):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)    # bytecode cached, as a user's Python does
        return env

    def time(self, case, cold, repeat):
        """(wall, cpu) of one run; cold: with an empty numba cache, or with one that only
        `implicit-nn compile` (make install's step) has filled when cold is INSTALLED."""
        folder = self.scratch / f"{self.label}-{case.replace(' ', '_')}-{str(cold)[0]}-{repeat}"
        folder.mkdir()
        cache = folder / "numba-cache" if cold else self.warm_cache
        argv = prepare(case, folder, self.python, self.env(self.warm_cache))
        if cold == INSTALLED:
            self.install_times.append(_run([self.python, "-m", "implicit_nn", "compile"], folder,
                                           self.env(cache)))
        result = _run([self.python, *argv], folder, self.env(cache))
        shutil.rmtree(folder, ignore_errors=True)
        return result


def measure(case, cold, repeats, sides):
    """Per side: list of (wall, cpu); runs alternate between the sides, one warm-up when warm."""
    if not cold:
        for side in sides:
            side.time(case, False, "warmup")
    times = [[] for _ in sides]
    for r in range(repeats):
        for side, out in zip(sides, times):
            out.append(side.time(case, cold, r))
    return times


def row(case, cold, times, sides):
    target = COLD_TARGETS.get((cold, case)) if cold else CASES[case][1]
    cells = [f"{case:<18}", f"{cold or 'warm':<9}"]
    for out in times:
        walls = [w for w, _ in out]
        cells += [f"{min(walls):8.2f}", f"{statistics.median(walls):8.2f}",
                  f"{statistics.median([c for _, c in out]):8.2f}"]
    if len(times) == 2:
        ratios = [a[0] / b[0] for a, b in zip(*times)]
        cpu_ratios = [a[1] / b[1] for a, b in zip(*times)]
        cells += [f"{statistics.median(ratios):7.2f}", f"{statistics.median(cpu_ratios):7.2f}"]
    cells.append(f"{'≤ %.1f' % target if target else '':>7}")
    return " ".join(cells)


def header(sides):
    cells = [f"{'case':<18}", f"{'cache':<9}"]
    for side in sides:
        cells += [f"{side.label + ' min':>8}", f"{'median':>8}", f"{'cpu med':>8}"]
    if len(sides) == 2:
        cells += [f"{'A/B':>7}", f"{'cpu A/B':>7}"]
    cells.append(f"{'target':>7}")
    return " ".join(cells)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="warm repeats per case (default 5)")
    ap.add_argument("--cold-repeats", type=int, default=3, help="cold repeats (default 3)")
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), choices=list(CASES),
                    metavar="CASE", help=f"warm cases (default: {', '.join(DEFAULT_CASES)})")
    ap.add_argument("--cold", nargs="*", default=list(DEFAULT_COLD), choices=list(CASES),
                    metavar="CASE", help=f"cold cases (default: {', '.join(DEFAULT_COLD)}); "
                                         "none with an empty list")
    ap.add_argument("--installed", nargs="*", default=list(DEFAULT_INSTALLED),
                    choices=list(CASES), metavar="CASE",
                    help="cases run first after an install: an empty numba cache that "
                         "`implicit-nn compile` (make install's last step) then fills, timed "
                         f"apart (default: {', '.join(DEFAULT_INSTALLED)}); none with an empty list")
    ap.add_argument("--python", default=sys.executable, help="interpreter A (default: this one)")
    ap.add_argument("--vs", default=None, metavar="PYTHON",
                    help="interpreter B to compare with, e.g. another checkout's .venv/bin/python")
    args = ap.parse_args()
    wanted = list(args.cases) + list(args.cold) + list(args.installed)
    if any(c.endswith("v0") for c in wanted):
        from conftest import REFERENCE
        if not REFERENCE.is_dir():
            sys.exit(f"the v0 cases need the HTRU2 reference data at {REFERENCE}")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        scratch = Path(tmp)
        sides = [Side(args.python, scratch, "A")]
        if args.vs:
            sides.append(Side(args.vs, scratch, "B"))
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, "
              f"{os.cpu_count()} CPUs; seconds of whole processes")
        print(header(sides))
        for mode, cases in ((COLD, args.cold), (INSTALLED, args.installed)):
            for case in cases:
                print(row(case, mode, measure(case, mode, args.cold_repeats, sides), sides),
                      flush=True)
        if args.installed:
            print(row("implicit-nn compile", "install", [s.install_times for s in sides], sides))
        for case in args.cases:
            print(row(case, False, measure(case, False, args.repeats, sides), sides), flush=True)
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
