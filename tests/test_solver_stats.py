"""--stats FILE: one row per validation of how the fixed-point solves went, consistent with the
results log's IF/IB, the same in CSV and JSON lines, and no change to any other output."""

import json
import math
from typing import NamedTuple

import numpy as np
import pytest

import implicit_nn
from conftest import example_here, example_params, log_rows
from implicit_nn.cli import main
from implicit_nn.engine.base import Solves
from implicit_nn.errors import InputError
from implicit_nn.solver_stats import COLUMNS, SolveTally, read_stats

OUTPUTS = ("results_small_1.dat", "test_metrics_small_1.dat", "test_metrics_final_small_1.dat",
           "predict_valid_small_1.dat", "predict_test_small_1.dat",
           "backup_best_autoencoder_small_1.dat")


def without_et(text):
    """A log's lines with the elapsed-time column and the header's date cut off."""
    return [line.rsplit("|", 2)[0] if line.startswith("|") else line
            for line in text.splitlines()]


class Solved(NamedTuple):
    """A solve report as the engines give it (engine.base.Solve / Solves), with the last
    iterate's max-norm."""
    iterations: object
    converged: object
    residual: object
    norm: object


def test_tally_measures():
    tally = SolveTally()
    tally.add(Solved(3, True, np.float32(1e-6), np.float32(2.0)))
    tally.add(Solved(np.array([50, 7]), np.array([False, True]),                # a maxiter hit
                     np.array([1e-3, 0.0], np.float32), np.array([4.0, 1.0], np.float32)))
    got = tally.summary(maxiter=50)
    assert got["solves"] == 3 and got["iter_max"] == 50 and got["iter_mean"] == 20.0
    assert got["maxiter_frac"] == pytest.approx(1 / 3) and got["nonfinite_frac"] == 0.0
    assert got["residual_max"] == pytest.approx(1e-3)
    assert got["relative_max"] == pytest.approx(2.5e-4)            # 1e-3 / 4
    assert got["relative_mean"] == pytest.approx((5e-7 + 2.5e-4 + 0.0) / 3)
    assert tally.summary(50)["solves"] == 0                          # emptied by summary
    tally.add(Solves.measured([4], [np.nan], 1e-5))                  # a diverged solve shows
    nan = tally.summary(50)
    assert nan["nonfinite_frac"] == 1.0 and math.isnan(nan["residual_max"])
    assert nan["maxiter_frac"] == 0.0                                # NaN stopped it, not maxiter
    tally.add(Solves.exact(2, 5))                                    # the level path: exact
    exact = tally.summary(50)
    assert exact["relative_max"] == 0.0 and exact["maxiter_frac"] == 0.0


def test_stats_rows_follow_the_log_and_change_nothing_else(tmp_path):
    plain = implicit_nn.train(example_params(tmp_path / "plain", maxiter_grad=2), backend="cpu")
    params = example_params(tmp_path / "stats", maxiter_grad=2)
    implicit_nn.train(params, backend="cpu", stats=tmp_path / "stats" / "solver.csv")
    for name in OUTPUTS:
        a = (tmp_path / "plain" / "outputs" / name).read_text()
        b = (tmp_path / "stats" / "outputs" / name).read_text()
        assert without_et(a)[2:] == without_et(b)[2:], name            # headers hold a date
    rows = read_stats(tmp_path / "stats" / "solver.csv")
    log = log_rows(tmp_path / "stats" / "outputs" / "results_small_1.dat")
    assert [r["kind"] for r in rows] == ["validation"] * len(log) + ["final"]
    assert [[str(r["epoch"]), str(r["minibatch"])] for r in rows[:-1]] == [l[:2] for l in log]
    # IF / IB are running means over the epoch: the rows' counts and means give them back
    done = {"train_forward": [0, 0.0], "train_backward": [0, 0.0]}
    for row, line in zip(rows, log):
        if row["minibatch"] == 16:                                   # first row of an epoch
            done = {g: [0, 0.0] for g in done}
        for group, column in (("train_forward", 5), ("train_backward", 6)):
            n, total = done[group]
            n, total = n + row[f"{group}_solves"], total + row[f"{group}_solves"] * row[
                f"{group}_iter_mean"]
            done[group] = [n, total]
            assert f"{total / n:.2f}" == line[column]
        assert row["valid_forward_solves"] == 2 * 20                  # 320 + 320 rows in 16s
        assert 0 < row["train_forward_relative_max"] < 1e-4            # |Δa| / |a| near tol
        assert 0 < row["train_backward_relative_mean"] <= row["train_backward_relative_max"]
        assert row["train_forward_residual_max"] <= params.tol_fixit or \
            row["train_forward_maxiter_frac"] > 0
    final = rows[-1]
    assert final["train_forward_solves"] == 0 and math.isnan(final["train_forward_iter_mean"])
    assert final["valid_forward_solves"] == 40
    again = implicit_nn.train(example_params(tmp_path / "stats", maxiter_grad=2),
                              backend="cpu", stats=tmp_path / "stats" / "solver.jsonl")
    assert again.history[-1].loss == plain.history[-1].loss
    lines = (tmp_path / "stats" / "solver.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["train_forward_iter_mean"] is None     # NaN is null in JSON
    as_json = read_stats(tmp_path / "stats" / "solver.jsonl")
    assert [list(r) for r in as_json] == [list(COLUMNS)] * len(rows)
    for a, b in zip(as_json, rows):         # the same run again: the same numbers
        assert all(a[c] == b[c] or (a[c] != a[c] and b[c] != b[c]) for c in COLUMNS)


def test_maxiter_hits_are_counted(tmp_path):
    params = example_params(tmp_path, maxiter_grad=1, maxiter_fix=3)
    implicit_nn.train(params, backend="cpu", stats=tmp_path / "s.csv")
    rows = read_stats(tmp_path / "s.csv")
    for group in ("train_forward", "train_backward", "valid_forward"):
        assert all(r[f"{group}_iter_max"] == 3 and r[f"{group}_maxiter_frac"] == 1.0
                   for r in rows if r[f"{group}_solves"])


def test_predict_writes_the_final_row(tmp_path, monkeypatch):
    example_here(tmp_path, monkeypatch, maxiter_grad=1)
    assert main(["--quiet", "--backend", "cpu"]) == 0
    assert main(["predict", "--quiet", "--backend", "cpu", "--load",
                 "outputs/backup_best_autoencoder_small_1.dat", "--stats", "p.jsonl"]) == 0
    (row,) = read_stats(tmp_path / "p.jsonl")
    assert row["kind"] == "final" and row["epoch"] == 0 and row["valid_forward_solves"] == 40


@pytest.mark.parametrize("where, message", [
    ("missing/s.csv", "does not exist"), ("outputs/results_small_1.dat", "is also output_name: it would be overwritten")])
def test_bad_stats_path_is_refused_before_anything_is_written(tmp_path, where, message):
    params = example_params(tmp_path, maxiter_grad=1)
    with pytest.raises(InputError, match=message):
        implicit_nn.train(params, stats=tmp_path / where)
    assert list((tmp_path / "outputs").iterdir()) == []


def test_plot_stats(tmp_path):
    pytest.importorskip("matplotlib")
    implicit_nn.train(example_params(tmp_path, maxiter_grad=1), backend="cpu",
                      stats=tmp_path / "s.csv")
    assert main(["plot", "--stats", str(tmp_path / "s.csv")]) == 0
    assert (tmp_path / "solver_stats.png").read_bytes()[:4] == b"\x89PNG"
