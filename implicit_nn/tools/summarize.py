"""`implicit-nn summarize`: the table the original's eval.py prints over a set of runs (driver.md §10).

Reads every `test_metrics_final_<tag>_<k>.dat` under a folder (sub-folders included, so a sweep's
one-folder-per-run layout reads as eval.py's one-folder-per-configuration layout; first block,
data row on line 4), groups the runs by tag, picks the best run by a validation column (first
maximum, NaN skipped), reads that run's `valid_th valid_mean valid_std` from the last line of the
backup beside it, and averages each column with the half-width of the 95 % Student-t interval,
t_{0.975,n-1} * sd(ddof=1) / sqrt(n).

The best run is chosen by VF1 unless --metric says otherwise: the paper's published tables
(results.txt) were made with `eval.py --vmetric F1`; eval.py's own default is AUC (`--metric AUC`).
"""

import math
import re
from pathlib import Path

import numpy as np

from ..console import Progress
from ..errors import InputError

FINAL_LOG = re.compile(r"^test_metrics_final_(?P<tag>.+)_(?P<run>\d+)\.dat$")
LABEL_WIDTH = 4
VALUE_WIDTH = 8
ET_WIDTH = 9


def _student_t_cdf(t, df):
    """P(T <= t) for an integer df >= 1, by the closed finite sums (Abramowitz-Stegun 26.7.3/4)."""
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = math.cos(theta), 0.0
        for j in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * j) / (2 * j + 1)
        inside = (2 / math.pi) * (theta + math.sin(theta) * total) if df > 1 else 2 * theta / math.pi
    else:
        term, total = 1.0, 0.0
        for j in range(1, df // 2 + 1):
            total += term
            term *= c2 * (2 * j - 1) / (2 * j)
        inside = math.sin(theta) * total
    return 0.5 + math.copysign(0.5 * inside, t)


def student_t_quantile(p, df):
    """Quantile of Student's t with integer df >= 1 for 0.5 <= p < 1, by bisection on the exact CDF."""
    lo, hi = 0.0, 1.0
    while _student_t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return 0.5 * (lo + hi)


def mean_and_margin(values):
    """(mean, 95 % half-width) over the non-NaN values; the half-width is NaN with fewer than 2."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(x[0]), math.nan
    return float(x.mean()), student_t_quantile(0.975, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)


def read_final_log(path):
    """(column names without ITER, values) from the first block of a final-metrics file."""
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    if len(lines) < 4:
        raise InputError("expected a final-metrics block (rule, header, rule, data row)",
                         path, len(lines) + 1)
    names = [piece.strip() for piece in lines[1].split("|")][1:-1]
    fields = [piece.strip() for piece in lines[3].split("|")][1:-1]
    if not names or names[0] != "ITER" or len(fields) != len(names):
        raise InputError(f"expected a header starting with ITER and a data row of {len(names)} "
                         "'|'-separated fields", path, 4 if names and names[0] == "ITER" else 2)
    try:
        values = [float(field) for field in fields]
    except ValueError:
        raise InputError("expected numbers in the data row", path, 4) from None
    return names[1:], values[1:]


def read_backup_threshold(path):
    """The backup's last line: valid_th, valid_mean, valid_std as the strings eval.py prints."""
    lines = Path(path).read_text().splitlines()
    pieces = lines[-1].split() if lines else []
    try:
        return tuple(float(piece) for piece in pieces[:3]) if len(pieces) >= 3 else None
    except ValueError:
        return None


class RunSet:
    """The runs of one tag: columns, per-run values, best run and averages.

    `paths` maps each run number to its final-metrics file."""

    def __init__(self, tag, paths, metric):
        self.tag = tag
        self.runs = sorted(paths)
        self.paths = [paths[run] for run in self.runs]
        self.columns = None
        rows = []
        for path in self.paths:
            names, values = read_final_log(path)
            if self.columns is None:
                self.columns = names
            elif names != self.columns:
                raise InputError(f"columns differ from run {self.runs[0]}'s", path, 2)
            rows.append(values)
        self.values = np.array(rows, dtype=float)
        self.metric = self._metric_column(metric)
        column = self.values[:, self.columns.index(self.metric)]
        self.best = None if np.isnan(column).all() else int(np.nanargmax(column))
        self.stats = [mean_and_margin(self.values[:, j]) for j in range(len(self.columns))]
        self.backup = None
        if self.best is not None:
            backup = self.run_file("backup_best_autoencoder", self.best)
            if backup.is_file():
                self.backup = read_backup_threshold(backup)

    def run_file(self, kind, index):
        """The `<kind>_<tag>_<run>.dat` file beside run `index`'s final-metrics file."""
        return self.paths[index].with_name(f"{kind}_{self.tag}_{self.runs[index]}.dat")

    def _metric_column(self, metric):
        for name in (metric, "V" + metric):
            if name in self.columns:
                return name
        raise InputError(f"--metric must be one of the columns {' '.join(self.columns)}, "
                         f"got '{metric}'")


def find_runs(folder):
    """{tag: {run number: final-metrics path}} for the final-metrics files under a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("expected a folder of run outputs", folder)
    groups = {}
    for path in sorted(folder.rglob("test_metrics_final_*.dat")):
        match = FINAL_LOG.match(path.name)
        if not match:
            continue
        runs = groups.setdefault(match["tag"], {})
        run = int(match["run"])
        if run in runs:
            raise InputError(f"run {run} of {match['tag']} is also in {runs[run].parent}", path)
        runs[run] = path
    if not groups:
        raise InputError("no test_metrics_final_<tag>_<run>.dat files here", folder)
    return groups


def _cells(label, values, columns):
    out = [f"{label:>{LABEL_WIDTH}}"]
    for name, value in zip(columns, values):
        if name == "ET":
            out.append(f"{value:{ET_WIDTH}.2f}")
        else:
            out.append(f"{value:{VALUE_WIDTH}.4f}")
    return "".join(out)


def format_table(runset):
    """Fixed-width text (77 columns for the usual 9 metrics): runs, best, mean and ± rows."""
    cols = runset.columns
    header = f"{'run':>{LABEL_WIDTH}}" + "".join(
        f"{name:>{ET_WIDTH if name == 'ET' else VALUE_WIDTH}}" for name in cols)
    best = "none" if runset.best is None else f"run {runset.runs[runset.best]}"
    lines = [f"{runset.tag}: {len(runset.runs)} runs; best by {runset.metric}: {best}", header]
    lines += [_cells(str(run), row, cols) for run, row in zip(runset.runs, runset.values)]
    lines.append("-" * len(header))
    if runset.best is None:
        lines.append(f"best: none ({runset.metric} is NaN in every run)")
    else:
        lines.append(_cells("best", runset.values[runset.best], cols))
    lines.append(_cells("mean", [m for m, _ in runset.stats], cols))
    lines.append(_cells("±95%", [pm for _, pm in runset.stats], cols))
    if runset.best is not None:
        if runset.backup is None:
            lines.append(f"backup of run {runset.runs[runset.best]}: not found or unreadable")
        else:
            th, mean, std = runset.backup
            lines.append(f"valid_th: {th} | valid_mean: {mean} | valid_std {std}")
    return "\n".join(lines)


def format_csv(runsets):
    """One header, one line per run, then mean and pm95 lines; best run flagged, with its backup."""
    columns = runsets[0].columns
    lines = [",".join(["tag", "run", *columns, "best", "valid_th", "valid_mean", "valid_std"])]
    for rs in runsets:
        for i, (run, row) in enumerate(zip(rs.runs, rs.values)):
            best = i == rs.best
            extra = [repr(v) for v in rs.backup] if best and rs.backup else ["", "", ""]
            lines.append(",".join([rs.tag, str(run), *(repr(float(v)) for v in row),
                                   "1" if best else "0", *extra]))
        for label, k in (("mean", 0), ("pm95", 1)):
            lines.append(",".join([rs.tag, label, *(repr(s[k]) for s in rs.stats), "", "", "", ""]))
    return "\n".join(lines)


def summarize(folder, metric="VF1", stream=None):
    """One RunSet per tag found under folder, tags in sorted order (a progress line on a tty)."""
    groups = sorted(find_runs(folder).items())
    progress = Progress("reading runs", sum(len(runs) for _, runs in groups), stream)
    runsets, read = [], 0
    for tag, runs in groups:
        runsets.append(RunSet(tag, runs, metric))
        read += len(runs)
        progress.update(read, tag)
    progress.close()
    return runsets


def run_summarize(args):
    runsets = summarize(args.dir, args.metric)
    if args.csv:
        if len({tuple(rs.columns) for rs in runsets}) > 1:
            raise InputError("runs with different columns cannot share one CSV", args.dir)
        print(format_csv(runsets))
    else:
        print("\n\n".join(format_table(rs) for rs in runsets))
    return 0
