"""`implicit-nn sweep SWEEP.toml`: a grid of configurations x seeds, trained in parallel on Ray.

The sweep file names a base parameter file, the seeds, fixed parameter changes, optionally the
paper's autoencoder network (make-config) and a grid; every combination of grid values is one
configuration (its tag), every seed one run. Run k of a configuration trains in OUT/<tag>/<k>/
with its own simulparams.dat and writes the original's output files under the names eval.py
expects (results_<tag>_<k>.dat, ...), so `implicit-nn summarize OUT` reads the sweep as it is.
A run is finished when its final-metrics file holds its data row: a rerun skips finished runs and
starts the others afresh. Each run is its own `implicit-nn train` process with one numba thread,
scheduled as a Ray task of one CPU, on a Ray instance started inside this process (--workers at
a time) or on an existing cluster (--address). docs/sweep.md describes the file.
"""

import ctypes
import dataclasses
import fcntl
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..console import Progress
from ..errors import InputError
from ..params import SCHEMA, MAX_STRING, read_params, validate, write_params
from .make_config import PAPER_ACT_TYPE, autoencoder_files
from .summarize import format_csv, read_final_log, summarize

SWEEP_KEYS = ("name", "base", "out", "seeds", "params", "network", "grid")
# make-config's options; `size` in the grid is [hidden_layer_num, start_layer, latent_num]
NETWORK_KEYS = ("family", "hidden_layer_num", "start_layer", "latent_num", "act_type")
NETWORK_DEFAULTS = {"family": "v0", "hidden_layer_num": 5, "start_layer": 64, "latent_num": 8}
KINDS = dict(SCHEMA)
# output entries -> the file name prefix eval.py and summarize look for
OUTPUTS = {"output_name": "results", "predict_name_valid": "predict_valid",
           "predict_name_test": "predict_test", "test_log": "test_metrics",
           "test_log_final": "test_metrics_final", "save_best_model": "backup_best_autoencoder"}
DATA_FILES = ("input_name", "input_name_valid", "input_name_test")
NETWORK_FILES = ("graph_datas", "logic_datas", "fixwb_datas", "shared_w_datas", "shared_b_datas")
RUN_PARAMS = "simulparams.dat"
RUN_LOG = "run.log"
RUN_LOCK = ".lock"             # held by whoever writes in a run folder
LOCK_WAIT_SECONDS = 60.0
SUMMARY = "summary.csv"
TAG_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training: configuration `tag`, run number (1-based, the seed's place), its folder."""
    tag: str
    number: int
    seed: int
    folder: Path
    params: object            # Params as written into folder/simulparams.dat
    network: dict             # {file name: text} written into folder/../network ({} if given)

    @property
    def name(self):
        return f"{self.tag}/{self.number}"

    def final_log(self):
        return self.folder / self.params.test_log_final

    def finished(self):
        """True when the final-metrics file holds its data row (the run's last write)."""
        try:
            read_final_log(self.final_log())
        except (OSError, InputError):
            return False
        return True


# -- the sweep file ------------------------------------------------------------------------------

def _load_toml(path):
    try:
        import tomllib
    except ImportError:                                     # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise InputError("reading a sweep file on Python 3.10 needs tomli: "
                             "pip install 'implicit-nn[sweep]'") from None
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise InputError(err.strerror or str(err), path) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        where = re.search(r" \(at line (\d+), column \d+\)", str(err))
        message = str(err).replace(where[0], "") if where else str(err)
        raise InputError(f"not valid TOML: {message}", path,
                         int(where[1]) if where else None) from None


class SweepFile:
    """The checked contents of a sweep file; `error(key, what)` names the key's line."""

    def __init__(self, path):
        self.path = Path(path)
        self.data, self.text = _load_toml(self.path)
        unknown = [key for key in self.data if key not in SWEEP_KEYS]
        if unknown:
            raise self.error(unknown[0], f"unknown key '{unknown[0]}' (expected one of "
                                         f"{', '.join(SWEEP_KEYS)})")
        for key in ("base", "seeds"):
            if key not in self.data:
                raise InputError(f"missing key '{key}'", self.path)
        self.name = self._string("name", self.path.stem)
        self.base = self.path.parent / self._string("base")
        self.out = self.data.get("out")
        if self.out is not None:
            self.out = self._string("out")
        self.seeds = self._seeds()
        self.params = self._table("params")
        self.network = self._table("network")
        self.grid = self._grid()
        for key in self.params:
            self._check_param(key, self.params[key])
        for key, value in self.network.items():
            self._check_network(key, value)

    def error(self, key, what):
        return InputError(what, self.path, self._line_of(key))

    def _line_of(self, key):
        """Line of the first `key =` (or `[key]`) in the file, None if not found."""
        for number, line in enumerate(self.text.splitlines(), start=1):
            stripped = line.strip().strip('"').replace('"', "")
            if stripped.startswith((f"{key} ", f"{key}=", f"[{key}]")):
                return number
        return None

    def _string(self, key, default=None):
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"{key}: expected a non-empty string")
        return value

    def _seeds(self):
        seeds = self.data["seeds"]
        if (not isinstance(seeds, list) or not seeds
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**64
                           for s in seeds)):
            raise self.error("seeds", "seeds: expected a list of non-negative integers")
        if len(set(seeds)) != len(seeds):
            raise self.error("seeds", "seeds: each seed once (one run per seed)")
        return seeds

    def _table(self, key):
        table = self.data.get(key, {})
        if not isinstance(table, dict):
            raise self.error(key, f"{key}: expected a table [{key}]")
        return table

    def _grid(self):
        grid = self._table("grid")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise self.error(key, f"grid {key}: expected a non-empty list of values")
            for value in values:
                if key == "size":
                    if (not isinstance(value, list) or len(value) != 3
                            or not all(isinstance(v, int) for v in value)):
                        raise self.error(key, "grid size: expected [hidden_layer_num, "
                                              "start_layer, latent_num] lists")
                elif key in NETWORK_KEYS:
                    self._check_network(key, value)
                else:
                    self._check_param(key, value)
        return grid

    def _check_network(self, key, value):
        if key not in NETWORK_KEYS:
            raise self.error(key, f"network {key}: expected one of {', '.join(NETWORK_KEYS)}")
        wanted = str if key == "family" else int
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise self.error(key, f"{key}: expected {'a string' if wanted is str else 'an integer'}"
                                  f", got {value!r}")

    def _check_param(self, key, value):
        kind = KINDS.get(key)
        if kind is None:
            raise self.error(key, f"'{key}' is not a parameter of simulparams.dat "
                                  "(docs/parameters.md) nor a network option")
        if key in OUTPUTS or key in ("seed", "neuron_num"):
            raise self.error(key, f"{key} is set by the sweep for each run")
        ok = {"u64": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
              "f32": isinstance(value, (int, float)) and not isinstance(value, bool),
              "str": isinstance(value, str) and value != "" and not any(c.isspace() for c in value)}
        if not ok[kind]:
            expected = {"u64": "a non-negative integer", "f32": "a number",
                        "str": "a word without spaces"}[kind]
            raise self.error(key, f"{key}: expected {expected}, got {value!r}")

    def configurations(self):
        """Every grid point as {key: value}, in grid order (the last key varies fastest)."""
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*self.grid.values())]

    def generates_network(self):
        return bool(self.network) or any(k in NETWORK_KEYS or k == "size" for k in self.grid)


# -- planning ------------------------------------------------------------------------------------

def _typed(name, value):
    kind = KINDS[name]
    return np.float32(value) if kind == "f32" else int(value) if kind == "u64" else str(value)


def _tag_value(value):
    if isinstance(value, float):
        text = repr(value)
        return text.replace("e-0", "e-").replace("e+0", "e")
    return str(value)


def _short_path(target, folder):
    """The shorter of the absolute path and the one relative to the run folder."""
    target = os.path.abspath(target)
    return min(target, os.path.relpath(target, folder), key=len)


def plan(sweep_path, out=None):
    """(output folder, [Run]) of a sweep file: every configuration x seed, nothing written.

    Parameter values that name files are taken relative to the current folder, as `implicit-nn
    train` takes them; the base file is taken relative to the sweep file."""
    sweep = SweepFile(sweep_path)
    out = Path(out or sweep.out or f"sweep_{sweep.name}").absolute()
    try:
        base = read_params(sweep.base)
    except OSError as err:
        raise sweep.error("base", f"base: cannot read {sweep.base}: {err.strerror}") from None
    runs = []
    for point in sweep.configurations():
        values = {name: _typed(name, v) for name, v in sweep.params.items()}
        values.update({name: _typed(name, v) for name, v in point.items()
                       if name in KINDS})
        network, tag = {}, sweep.name
        if sweep.generates_network():
            tag, network, values = _network(sweep, point, base, values)
        suffix = [f"{name}{_tag_value(v)}" for name, v in point.items()
                  if name in KINDS and len(sweep.grid[name]) > 1]
        tag = "_".join([tag, *suffix])
        if not set(tag) <= TAG_CHARACTERS:
            raise sweep.error("grid", f"configuration name '{tag}' has characters other than "
                                      "letters, digits and . + - _")
        for number, seed in enumerate(sweep.seeds, start=1):
            folder = out / tag / str(number)
            runs.append(Run(tag, number, seed, folder,
                            _run_params(sweep, base, values, tag, number, seed, folder), network))
    return out, runs


def _network(sweep, point, base, values):
    """(tag, {file name: text}, values with the network's entries) of one grid point."""
    options = dict(NETWORK_DEFAULTS, **sweep.network)
    options.update({k: v for k, v in point.items() if k in NETWORK_KEYS})
    if "size" in point:
        options["hidden_layer_num"], options["start_layer"], options["latent_num"] = point["size"]
    family = options["family"]
    act_type = options.get("act_type", PAPER_ACT_TYPE.get(family))
    tag, _, neuron_num, _, files = autoencoder_files(
        family, options["hidden_layer_num"], options["start_layer"], options["latent_num"],
        base.input_num, act_type)
    values = dict(values, neuron_num=neuron_num)
    for entry in NETWORK_FILES:
        kind = entry[:-len("_datas")]
        values[entry] = str(Path("..", "network", f"{kind}_autoencoder_{tag}.dat"))
    if "ff_optimization" not in values:           # the paper's: PERT levels for the acyclic v0
        values["ff_optimization"] = 1 if family == "v0" else 0
    return tag, files, values


def _run_params(sweep, base, values, tag, number, seed, folder):
    """The Params of one run, file names relative to its folder; checked as training would."""
    changes = dict(values, seed=seed)
    for entry in DATA_FILES + NETWORK_FILES:
        if entry in changes and entry in NETWORK_FILES and sweep.generates_network():
            continue                                   # already relative to the run folder
        name = changes.get(entry, getattr(base, entry))
        if entry in DATA_FILES and not os.path.isfile(name):
            raise sweep.error(entry if entry in sweep.params else "base",
                              f"{entry}: no file '{name}' (file names are taken relative to the "
                              f"folder the sweep runs in: {os.getcwd()})")
        changes[entry] = _short_path(name, folder)
    for entry, prefix in OUTPUTS.items():
        changes[entry] = f"{prefix}_{tag}_{number}.dat"
    changes["load_backup"] = changes["save_best_model"]
    params = dataclasses.replace(base, **changes)
    for entry, kind in SCHEMA:
        if kind == "str" and len(getattr(params, entry)) > MAX_STRING:
            raise InputError(f"{entry} of run {tag}/{number} would be "
                             f"{len(getattr(params, entry))} characters long; the original "
                             f"allows {MAX_STRING} (use a shorter output folder)", sweep.path)
    validate(params, str(sweep.path))
    return params


# -- preparing and running one run ---------------------------------------------------------------

def _lock(folder):
    """An exclusive lock on the run folder (a file descriptor; closing it unlocks).

    Trainings left behind by a killed sweep die with their parent, but may need a moment: wait
    for their lock rather than clear a folder they still write in."""
    fd = os.open(Path(folder) / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise InputError("another process is still training here", folder) from None
            time.sleep(0.2)


def prepare(run):
    """Write the run's network (shared by its configuration) and simulparams.dat, after removing
    what an interrupted earlier attempt left; refuse a finished run made with other settings."""
    network = run.folder.parent / "network"
    for name, text in run.network.items():
        path = network / name
        if path.is_file() and path.read_text() != text:
            raise InputError(f"{path} differs from what the sweep file now gives; use another "
                             "output folder (--out) or delete that configuration's folder", path)
    run.folder.mkdir(parents=True, exist_ok=True)
    for name, text in run.network.items():
        if not (network / name).is_file():
            network.mkdir(exist_ok=True)
            (network / name).write_text(text)
    lock = _lock(run.folder)
    try:
        for entry in OUTPUTS:
            (run.folder / getattr(run.params, entry)).unlink(missing_ok=True)
        (run.folder / RUN_LOG).unlink(missing_ok=True)
        write_params(run.folder / RUN_PARAMS, run.params)
    finally:
        os.close(lock)


def check_finished(run):
    """A finished run must have been made with the parameters the sweep file gives now."""
    written = run.folder / RUN_PARAMS
    with tempfile.TemporaryDirectory() as tmp:
        write_params(Path(tmp) / RUN_PARAMS, run.params)
        same = written.is_file() and written.read_bytes() == (Path(tmp) / RUN_PARAMS).read_bytes()
    if not same:
        raise InputError(f"run {run.name} was trained with other parameters than the sweep file "
                         "now gives; use another output folder (--out) or delete it",
                         written)


def _die_with_parent():
    """Ask Linux to kill this process when the process that started it dies (a killed sweep
    must not leave trainings writing into folders that a resumed sweep starts afresh)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)                # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_main(argv=None):
    """Entry of a run's process: `python -c 'from implicit_nn.tools.sweep import child_main;
    child_main()' PARENT_PID ARGS...` trains with ARGS unless its parent is already gone."""
    argv = sys.argv[1:] if argv is None else argv
    _die_with_parent()
    if os.getppid() != int(argv[0]):
        sys.exit(1)
    from ..cli import main
    sys.exit(main(argv[1:]))


def train_run(folder, backend):
    """Train in `folder` as its own process with one numba thread, holding the folder's lock.

    Returns (exit status, the last line of its error output, seconds)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-c", "from implicit_nn.tools.sweep import child_main; "
               "child_main()", str(os.getpid()), "train", RUN_PARAMS, "--quiet", "--backend",
               backend]
    start = time.perf_counter()
    lock = _lock(folder)
    try:
        with open(Path(folder) / RUN_LOG, "w") as log:
            done = subprocess.run(command, cwd=folder, env=env, stdout=log,
                                  stderr=subprocess.PIPE, text=True, pass_fds=(lock,))
            log.write(done.stderr)
    finally:
        os.close(lock)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    error = lines[-1] if lines else f"exit status {done.returncode}"
    return done.returncode, error, time.perf_counter() - start


# -- the sweep on Ray ----------------------------------------------------------------------------

def _ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise InputError("implicit-nn sweep runs on Ray, which is not installed: "
                         "pip install 'implicit-nn[sweep]'") from None
    return ray


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Tally:
    """Counts and the status line of a sweep in progress."""

    def __init__(self, total, workers, stream):
        self.total, self.done, self.failed, self.running = total, 0, 0, 0
        self.workers = workers
        self.seconds = []
        self.progress = Progress("sweep", total, stream)

    def status(self):
        left = self.total - self.done - self.failed
        eta = ""
        if self.seconds and left:
            eta = f", ETA {_duration(np.mean(self.seconds) * left / self.workers)}"
        return f"done, {self.running} running, {self.failed} failed{eta}"

    def show(self):
        self.progress.update(self.done + self.failed, self.status())

    def finished(self, run, status, error, seconds):
        if status == 0:
            self.done += 1
            self.seconds.append(seconds)
            self.progress.note(f"done {run.name} (seed {run.seed}) in {seconds:.1f} s")
        else:
            self.failed += 1
            self.progress.note(f"FAILED {run.name} (seed {run.seed}): {error} "
                               f"[{run.folder / RUN_LOG}]")
        self.show()


def execute(runs, workers=None, address=None, backend="cpu", stream=None):
    """Train `runs` as Ray tasks, at most `workers` at a time; returns the number that failed."""
    ray = _ray()
    import logging
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    out = sys.stdout if stream is None else stream
    if address:
        print(f"connecting to the Ray cluster at {address} ...", file=out, flush=True)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise InputError(f"cannot use the Ray cluster at {address}: {err}") from None
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    else:
        workers = workers or os.cpu_count() or 1
        print(f"starting Ray on this machine, {workers} workers ...", file=out, flush=True)
        ray.init(num_cpus=workers, _node_ip_address="127.0.0.1", **options)   # loopback only
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(train_run)
        tally = Tally(len(runs), workers, stream)
        waiting, in_flight = list(reversed(runs)), {}
        tally.show()
        while waiting or in_flight:
            while waiting and len(in_flight) < workers:
                run = waiting.pop()
                in_flight[task.remote(str(run.folder), backend)] = run
            tally.running = len(in_flight)
            tally.show()
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                run = in_flight.pop(ref)
                try:
                    status, error, seconds = ray.get(ref)
                except ray.exceptions.RayError as err:
                    status, error, seconds = 1, f"Ray: {str(err).splitlines()[0]}", 0.0
                tally.running = len(in_flight)
                tally.finished(run, status, error, seconds)
        tally.progress.close()
        return tally.failed
    finally:
        ray.shutdown()


def run_sweep(args):
    out, runs = plan(args.sweep_file, args.out)
    finished = [run.finished() for run in runs]
    for run, done in zip(runs, finished):
        if done:
            check_finished(run)
    todo = [run for run, done in zip(runs, finished) if not done]
    configurations = len({run.tag for run in runs})
    print(f"{len(runs)} runs ({configurations} configurations x {len(runs) // configurations} "
          f"seeds) in {out}: {sum(finished)} finished before, {len(todo)} to run")
    if args.dry_run:
        for run, done in zip(runs, finished):
            print(f"{run.name:40} seed {run.seed:<10} {'finished' if done else 'to run'}")
        return 0
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    for run in todo:
        prepare(run)
    start = time.perf_counter()
    failed = execute(todo, args.workers, args.address, args.backend) if todo else 0
    print(f"{len(todo) - failed} runs trained in {_duration(time.perf_counter() - start)}, "
          f"{sum(finished)} finished before, {failed} failed")
    if len(todo) - failed + sum(finished):
        (out / SUMMARY).write_text(format_csv(summarize(out)) + "\n")
        print(f"wrote {out / SUMMARY} (implicit-nn summarize {out} for the tables)")
    return 1 if failed else 0
