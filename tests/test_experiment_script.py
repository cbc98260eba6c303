"""An experiment script in the original's style, with `implicit-nn` in place of `./neural`.

The original scripts loop over run ids, write `inputs/simulparams.dat` (simparam.py) and call the
trainer from the same folder. Here a bash loop does the same on a tiny setting, then every output is
parsed with the column logic of the original eval.py (driver.md §10).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_driver import PARAMS, setup  # noqa: F401  (fixture)

SCRIPT = r"""
set -e
for id in 1 2 3; do
  seed=$((id + 2024))
  sed -e "s/^seed .*/seed                       $seed/" \
      -e "s/RUNID/$id/g" inputs/template.dat > inputs/simulparams.dat
  "$TRAINER" train --quiet --backend cpu
done
"""


def eval_columns(path):
    """eval.py: strip lines, drop rule lines 0, last and (new) 1; header names from line 1."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    del lines[0]
    del lines[-1]
    del lines[1]
    return [c.strip() for c in lines[0].split("|")][1:-1]


def eval_row(path):
    """eval.py: the 4th stripped line, split on '|', first and last pieces dropped, float()."""
    line = [line.strip() for line in path.read_text().splitlines()][3]
    return [float(c.strip()) for c in line.split("|")[1:-1]]


def eval_predictions(path):
    """eval.py: space-separated CSV without header; the trailing space makes an empty column."""
    rows = [line.split(" ") for line in path.read_text().split("\n") if line]
    assert all(row[-1] == "" for row in rows)
    return [[float(v) for v in row[:-1]] for row in rows]


def test_script_loop_and_eval_parsing(setup):  # noqa: F811
    root = setup(maxiter_grad=2, output_name="out/results_RUNID.dat",
                 predict_name_valid="out/predict_valid_RUNID.dat",
                 predict_name_test="out/predict_test_RUNID.dat",
                 test_log="out/test_metrics_RUNID.dat",
                 test_log_final="out/test_metrics_final_RUNID.dat",
                 save_best_model="out/backup_best_RUNID.dat")
    shutil.copy(root / "inputs/simulparams.dat", root / "inputs/template.dat")
    beside = Path(sys.executable).parent / "implicit-nn"     # this venv's, active or not
    trainer = str(beside) if beside.is_file() else shutil.which("implicit-nn")
    if trainer is None:
        pytest.skip("the implicit-nn console script is neither beside python nor on PATH")
    done = subprocess.run(["bash", "-c", SCRIPT], cwd=root, capture_output=True, text=True,
                          env=dict(os.environ, TRAINER=trainer))
    assert done.returncode == 0, done.stderr
    names = eval_columns(root / "out/test_metrics_final_1.dat")
    assert names == ["ITER", "VAUC", "VMCC", "VF1", "CTF1", "CTMCC", "CTACC", "CTP", "CTR", "ET"]
    table = [eval_row(root / f"out/test_metrics_final_{k}.dat") for k in (1, 2, 3)]
    assert all(len(row) == 10 and row[0] == 2 for row in table)
    best = max(range(3), key=lambda k: table[k][names.index("VF1")]) + 1
    preds = eval_predictions(root / f"out/predict_test_{best}.dat")
    assert len(preds) == PARAMS["test_num"] and all(len(p) == 4 for p in preds)
    last = (root / f"out/backup_best_{best}.dat").read_text().split("\n")
    th, mean, std = (float(v) for v in last[-2].split(" ")[:3])
    assert last[-1] == "" and std > 0
    # different seeds: different runs
    assert len({tuple(row[1:9]) for row in table}) > 1
