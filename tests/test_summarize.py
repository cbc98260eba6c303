"""`implicit-nn summarize` against the original eval.py tables (reference */v0_5_32_8/eval_results.txt)."""

import math
import re

import pytest

from implicit_nn.cli import main
from implicit_nn.errors import InputError
from implicit_nn.tools.summarize import (mean_and_margin, read_final_log, student_t_quantile,
                                         summarize)

TAG = "v0_M5_S32_L8-I8"
COLUMNS = ["VAUC", "VMCC", "VF1", "CTF1", "CTMCC", "CTACC", "CTP", "CTR", "ET"]


def parse_eval_results(path):
    """eval.py's printout: per-run rows (visible columns), best index, AVG/PM, valid_th line."""
    text = path.read_text()
    lines = text.splitlines()
    start = lines.index("The results: ") + 2
    header = lines[start].split()
    rows = []
    for line in lines[start + 1:]:
        if not re.match(r"^\d+\s", line):
            break
        rows.append(dict(zip(header, (float(v) for v in line.split()[1:] if v != "..."))))
    header = [h for h in header if h != "..."]
    rows = [dict(zip(header, row.values())) for row in rows]
    best = int(re.search(r"The index: (\d+)", text)[1])
    avg = {}
    avg_at = lines.index("Average results:")
    for line in lines[avg_at + 3:]:
        parts = line.split()
        if len(parts) != 3:
            break
        avg[parts[0]] = (float(parts[1]), float(parts[2]))
    return rows, best, avg, lines[-1]


def write_final(path, values):
    """A final-metrics block in the original's layout (driver.md §7.4)."""
    names = ["ITER"] + COLUMNS
    rule = "*" * 121
    header = "|" + " |".join(f"{n:>10}" for n in names) + " | Thu Mar  7 16:43:57 2024 \n"
    fields = ["%10d" % 20] + ["%10.6f" % v for v in values[:-1]] + ["%10.2f" % values[-1]]
    row = "|" + " |".join(fields) + " | \n"
    path.write_text(rule + "\n" + header + "-" * 121 + "\n" + row + "-" * 121 + "\n")


def test_student_t_quantile_known_values():
    # t_{0.975, df} from standard tables
    for df, t in ((1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157), (30, 2.042272)):
        assert student_t_quantile(0.975, df) == pytest.approx(t, abs=1e-6)


def test_margin_formula_and_nan_handling():
    mean, pm = mean_and_margin([1.0, 2.0, 3.0, math.nan])
    assert mean == 2.0
    assert pm == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-7)
    assert math.isnan(mean_and_margin([5.0])[1])


@pytest.mark.parametrize("kind", ["training", "inference"])
def test_shared_runs_rows_match_eval_results(reference, kind):
    folder = reference / kind / "v0_5_32_8"
    rows, _, _, _ = parse_eval_results(folder / "eval_results.txt")
    (runset,) = summarize(folder)
    assert runset.tag == TAG and runset.runs == [1, 2] and runset.columns == COLUMNS
    for i in range(2):
        for name, value in rows[i].items():
            assert runset.values[i][COLUMNS.index(name)] == value


@pytest.mark.parametrize("kind", ["training", "inference"])
def test_ten_runs_reproduce_eval_results(reference, tmp_path, kind):
    """The 10 published rows (CTMCC is elided in the printout) give eval.py's best run and AVG/PM."""
    rows, best, avg, valid_line = parse_eval_results(reference / kind / "v0_5_32_8" /
                                                     "eval_results.txt")
    assert len(rows) == 10
    for k, row in enumerate(rows, start=1):
        write_final(tmp_path / f"test_metrics_final_{TAG}_{k}.dat",
                    [row.get(name, 0.5) for name in COLUMNS])
    th, mean, std = (float(v) for v in re.fullmatch(
        r"valid_th: (\S+) \| valid_mean: (\S+) \| valid_std (\S+)", valid_line).groups())
    (tmp_path / f"backup_best_autoencoder_{TAG}_{best}.dat").write_text(
        "0.100000 \n\n0.000000 \n%f %f %f \n" % (th, mean, std))
    (runset,) = summarize(tmp_path, "F1")
    assert runset.runs[runset.best] == best
    for name, (m, pm) in avg.items():
        if name == "CTMCC":
            continue
        got_m, got_pm = runset.stats[COLUMNS.index(name)]
        assert got_m == pytest.approx(m, abs=6e-7)
        assert got_pm == pytest.approx(pm, abs=6e-7)
    assert runset.backup == (th, mean, std)


def test_cli_table_fits_80_columns_and_prints_backup_line(reference, capsys):
    assert main(["summarize", str(reference / "training" / "v0_5_32_8")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in out) <= 80
    assert out[-1] == "valid_th: 1.539 | valid_mean: 0.354291 | valid_std 0.224099"
    assert out[0] == f"{TAG}: 2 runs; best by VF1: run 1"
    best = next(line for line in out if line.startswith("best"))
    assert "0.9223" in best


def test_cli_csv(reference, capsys):
    assert main(["summarize", str(reference / "inference" / "v0_5_32_8"), "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:11] == ["tag", "run"] + COLUMNS
    run1 = lines[1].split(",")
    assert run1[:4] == [TAG, "1", "0.937335", "0.825567"] and run1[11] == "1"
    assert [line.split(",")[1] for line in lines[1:]] == ["1", "2", "mean", "pm95"]


def test_several_tags_and_nan_metric(tmp_path):
    write_final(tmp_path / "test_metrics_final_a_1.dat", [math.nan] * 8 + [1.0])
    write_final(tmp_path / "test_metrics_final_b_1.dat", [0.5] * 8 + [1.0])
    write_final(tmp_path / "test_metrics_final_b_2.dat", [0.7] * 8 + [1.0])
    a, b = summarize(tmp_path)
    assert (a.tag, a.best) == ("a", None)
    assert (b.tag, b.runs, b.best) == ("b", [1, 2], 1)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(InputError, match="no test_metrics_final"):
        summarize(tmp_path)
    bad = tmp_path / f"test_metrics_final_{TAG}_1.dat"
    bad.write_text("*\n| ITER | VF1 | x \n-\n| 1 | abc | \n")
    with pytest.raises(InputError, match=r"_1\.dat:4: expected numbers"):
        read_final_log(bad)
    assert main(["summarize", str(tmp_path), "--metric", "ZZ"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_auc_selects_as_eval_py_by_default_and_f1_as_the_published_tables(tmp_path):
    """eval.py picks by --vmetric (AUC by default); the published tables were made with F1."""
    write_final(tmp_path / "test_metrics_final_t_1.dat", [0.95, 0.8, 0.90] + [0.5] * 5 + [1.0])
    write_final(tmp_path / "test_metrics_final_t_2.dat", [0.93, 0.8, 0.92] + [0.5] * 5 + [1.0])
    (by_f1,) = summarize(tmp_path)
    (by_auc,) = summarize(tmp_path, "AUC")
    assert (by_f1.metric, by_f1.runs[by_f1.best]) == ("VF1", 2)
    assert (by_auc.metric, by_auc.runs[by_auc.best]) == ("VAUC", 1)


def test_runs_in_sub_folders_as_a_sweep_writes_them(tmp_path):
    for run, f1 in ((1, 0.5), (2, 0.9)):
        folder = tmp_path / "t" / str(run)
        folder.mkdir(parents=True)
        write_final(folder / f"test_metrics_final_t_{run}.dat", [0.5, 0.5, f1] + [0.5] * 5 + [1.0])
    (tmp_path / "t" / "2" / "backup_best_autoencoder_t_2.dat").write_text("0.1 \n1.5 0.2 0.3 \n")
    (runset,) = summarize(tmp_path)
    assert runset.runs == [1, 2] and runset.runs[runset.best] == 2
    assert runset.backup == (1.5, 0.2, 0.3)             # read beside the best run's final file
    write_final(tmp_path / "test_metrics_final_t_2.dat", [0.5] * 8 + [1.0])
    with pytest.raises(InputError, match="run 2 of t is also in"):
        summarize(tmp_path)
