"""`implicit-nn sweep`: planning, per-run folders, resuming, failures; a real 2-worker Ray sweep.

Planning and single runs need no Ray; the Ray tests skip (with the reason printed) unless the
optional extra is installed (`pip install -e '.[sweep]'`; `.ci/run` installs it for them).
"""

import dataclasses
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from implicit_nn.cli import main
from implicit_nn.errors import InputError
from implicit_nn.params import read_params
from implicit_nn.tools import sweep
from implicit_nn.tools.summarize import summarize

from conftest import ROOT, log_rows

EXAMPLE = ROOT / "examples" / "small" / "sweep.toml"
TAGS = ["v0_M3_S8_L2-I6", "v1_M3_S8_L2-I6"]


def write_sweep(folder, text, base=ROOT / "inputs" / "simulparams.dat"):
    path = folder / "sweep.toml"
    path.write_text(f'base = "{base}"\n' + text)
    return path


SMALL = """seeds = [2024, 2025]
[params]
maxiter_grad = 1
[network]
hidden_layer_num = 3
start_layer = 8
latent_num = 2
[grid]
family = ["v0", "v1"]
"""


@pytest.fixture
def at_root(monkeypatch):
    """Run from the repository root: the bundled parameter file's data paths start there."""
    monkeypatch.chdir(ROOT)


def test_plan_of_the_bundled_sweep_file(at_root, tmp_path):
    out, runs = sweep.plan(EXAMPLE, tmp_path / "out")
    assert out == tmp_path / "out"
    assert [(r.tag, r.number, r.seed) for r in runs] == [
        (TAGS[0], 1, 2024), (TAGS[0], 2, 2025), (TAGS[1], 1, 2024), (TAGS[1], 2, 2025)]
    base = read_params(ROOT / "inputs" / "simulparams.dat")
    for run in runs:
        p = run.params
        assert run.folder == out / run.tag / str(run.number)
        assert (p.seed, p.maxiter_grad) == (run.seed, 2)
        assert p.ff_optimization == (1 if run.tag.startswith("v0") else 0)
        assert p.neuron_num == 30 and p.graph_datas == f"../network/graph_autoencoder_{run.tag}.dat"
        assert p.test_log_final == f"test_metrics_final_{run.tag}_{run.number}.dat"
        assert p.save_best_model == p.load_backup == \
            f"backup_best_autoencoder_{run.tag}_{run.number}.dat"
        assert (run.folder / p.input_name).resolve() == (ROOT / base.input_name).resolve()
        assert p.alpha == base.alpha and p.optimizer == base.optimizer
    # the v1 configuration is the bundled network, byte for byte
    for name, text in runs[2].network.items():
        assert (ROOT / "examples" / "small" / "network" / name).read_text() == text


def test_grid_over_parameters_names_each_configuration(at_root, tmp_path):
    path = write_sweep(tmp_path, 'name = "small"\nseeds = [7]\n[grid]\nalpha = [1.0e-4, 0.001]\n'
                                 'optimizer = [1]\n')
    out, runs = sweep.plan(path, tmp_path / "out")
    assert [r.tag for r in runs] == ["small_alpha0.0001", "small_alpha0.001"]
    assert [r.params.alpha for r in runs] == [np.float32(1e-4), np.float32(1e-3)]
    assert all(r.network == {} and r.params.graph_datas.endswith("graph_autoencoder_v1_M3_S8_L2"
                                                                 "-I6.dat") for r in runs)


def test_htru2_paper_sweep_file_gives_the_published_runs(reference, tmp_path, monkeypatch):
    """18 networks x 10 seeds; run 1 of (5;32;8) v0 has the settings of reference/README.md and
    the network of reference/configs, byte for byte."""
    monkeypatch.chdir(reference)
    out, runs = sweep.plan(ROOT / "examples" / "htru2_paper.toml", tmp_path / "out")
    assert len(runs) == 180 and len({r.tag for r in runs}) == 18
    first = runs[0]
    assert (first.tag, first.number, first.seed) == ("v0_M5_S32_L8-I8", 1, 2025)
    p = first.params
    expected = dict(shuffle_num=100000, maxiter_grad=20, maxiter_fix=50, sfreq=11,
                    learn_num=13164, valid_num=2929, test_num=1790, mini_batch_size=16,
                    neuron_num=120, input_num=8, output_num=8, train_lossfunction_type="MSE",
                    valid_metric_type="F1", range_div=8000, optimizer=1, nesterov=1,
                    lr_scheduler=2, step_size=1, early_stopping=0, ff_optimization=1, clipping=0)
    assert {k: getattr(p, k) for k in expected} == expected
    assert (p.alpha, p.grad_alpha, p.lr_gamma, p.tol_fixit) == \
        (np.float32(1e-4), np.float32(0.01), np.float32(0.5), np.float32(1e-5))
    assert Path(p.input_name_test).name == "htru2_test.csv"
    for run in runs:
        family = run.tag[:2]
        for name, text in run.network.items():
            assert (reference / "configs" / family / name).read_text() == text, name
    assert {r.params.ff_optimization for r in runs if r.tag.startswith(("v1", "v2"))} == {0}


@pytest.mark.parametrize("text,expected", [
    ("seeds = [1]\nbogus = 3\n", "sweep.toml:3: unknown key 'bogus'"),
    ("seeds = [1]\n[params]\nalpha = \"x\"\n", "sweep.toml:4: alpha: expected a number"),
    ("seeds = [1]\n[params]\nlearn_rate = 1\n", "sweep.toml:4: 'learn_rate' is not a parameter"),
    ("seeds = [1]\n[params]\nseed = 1\n", "sweep.toml:4: seed is set by the sweep"),
    ("seeds = [1, 1]\n", "sweep.toml:2: seeds: each seed once"),
    ("seeds = []\n", "sweep.toml:2: seeds: expected a list of non-negative integers"),
    ("seeds = [1]\n[grid]\nsize = [[5, 32]]\n", "sweep.toml:4: grid size: expected"),
    ("seeds = [1]\n[grid]\nfamily = [\"v7\"]\n", "--family must be one of v0, v1, v2"),
    ("seeds = [1]\n[params]\ninput_name = \"nowhere.csv\"\n", "input_name: no file 'nowhere.csv'"),
    ("seeds = [1]\n[params]\nmini_batch_size = 0\n", "mini_batch_size must be positive"),
    ("seeds = [1]\nout = = 2\n", "sweep.toml:3: not valid TOML: Invalid value"),
])
def test_bad_sweep_files_are_one_line_errors(at_root, tmp_path, capsys, text, expected):
    path = write_sweep(tmp_path, text)
    assert main(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_runs_and_writes_nothing(at_root, tmp_path, capsys):
    assert main(["sweep", str(EXAMPLE), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("4 runs (2 configurations x 2 seeds) in ")
    assert lines[0].endswith(": 0 finished before, 4 to run")
    assert lines[1].split() == [f"{TAGS[0]}/1", "seed", "2024", "to", "run"]
    assert not (tmp_path / "out").exists()


def test_one_run_trains_in_its_folder_and_a_rerun_clears_leftovers(at_root, tmp_path):
    path = write_sweep(tmp_path, SMALL)
    _, runs = sweep.plan(path, tmp_path / "out")
    run = runs[2]
    sweep.prepare(run)
    (run.folder / run.params.output_name).write_text("left by a killed attempt\n")
    sweep.prepare(run)
    assert not (run.folder / run.params.output_name).exists()
    status, error, seconds = sweep.train_run(str(run.folder), "cpu")
    assert status == 0, error
    assert run.finished() and seconds > 0
    assert len(log_rows(run.folder / run.params.test_log_final)) == 1
    sweep.check_finished(run)                      # the same settings: accepted
    changed = dataclasses.replace(run, params=dataclasses.replace(run.params, alpha=np.float32(1)))
    with pytest.raises(InputError, match="trained with other parameters"):
        sweep.check_finished(changed)


def test_a_failing_run_reports_the_trainers_error(at_root, tmp_path):
    path = write_sweep(tmp_path, SMALL)
    _, runs = sweep.plan(path, tmp_path / "out")
    run = runs[0]
    sweep.prepare(run)
    broken = dataclasses.replace(run.params, valid_num=321)        # one more row than the file
    sweep.write_params(run.folder / sweep.RUN_PARAMS, broken)
    status, error, _ = sweep.train_run(str(run.folder), "cpu")
    assert status == 1 and error.startswith("implicit-nn: error: ") and "valid.dat" in error
    assert error in (run.folder / sweep.RUN_LOG).read_text()
    assert not run.finished()


def test_missing_ray_is_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'implicit-nn\[sweep\]'"):
        sweep.execute([], workers=1)


def test_unreachable_cluster_is_a_one_line_error(monkeypatch):
    def refuse(**options):
        raise ConnectionError("ray client connection timeout")
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(init=refuse))
    with pytest.raises(InputError, match="cannot use the Ray cluster at ray://head:10001: ray "
                                         "client connection timeout"):
        sweep.execute([], address="ray://head:10001")


# -- with Ray ------------------------------------------------------------------------------------

def require_ray():
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("Ray is not installed (pip install -e '.[sweep]'; .ci/run installs it)")


def finished_runs(out):
    return sorted(str(p.relative_to(out)) for p in out.glob("*/*/test_metrics_final_*.dat")
                  if len(p.read_text().splitlines()) >= 4)


def wait_for_session_end(session, seconds=120):
    """Until no process of this session (the killed sweep's Ray workers and runs) is left; the
    runs die with their worker (docs/sweep.md), the workers soon after their raylet."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session and fields[0] != "Z":
                alive.append(stat.parent.name)
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes of the killed sweep still running: {alive}")


def test_two_worker_sweep_killed_and_resumed(tmp_path):
    """2 configurations x 2 seeds x 1 epoch on 2 workers; the sweep and everything it started is
    killed (SIGKILL to its process group) once the first run has finished; the rerun keeps that
    run, trains the others afresh and gathers the summary of all four."""
    require_ray()
    path = write_sweep(tmp_path, SMALL)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "implicit_nn", "sweep", str(path), "--out", str(out),
               "--workers", "2"]
    first = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not finished_runs(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    wait_for_session_end(first.pid)       # Ray's workers outlive the kill, and a run may finish
    kept = {name: (out / name).stat().st_mtime_ns for name in finished_runs(out)}
    assert 1 <= len(kept) < 4, kept

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith(f": {len(kept)} finished before, {4 - len(kept)} to run")
    assert sum(line.startswith("done ") for line in lines) == 4 - len(kept)
    assert lines[-1] == f"wrote {out / 'summary.csv'} (implicit-nn summarize {out} for the tables)"
    for name, mtime in kept.items():
        assert (out / name).stat().st_mtime_ns == mtime, name       # not trained again
    assert len(finished_runs(out)) == 4
    for log in out.glob("*/*/results_*.dat"):                      # one block: a fresh start
        assert log.read_text().count("ITER") == 1, log
    runsets = summarize(out)
    assert [(rs.tag, rs.runs) for rs in runsets] == [(TAGS[0], [1, 2]), (TAGS[1], [1, 2])]
    csv = (out / "summary.csv").read_text().splitlines()
    assert csv[0].startswith("tag,run,VAUC") and len(csv) == 1 + 2 * (2 + 2)


def test_a_failed_run_does_not_stop_the_others(at_root, tmp_path, capsys):
    require_ray()
    path = write_sweep(tmp_path, SMALL.replace("[params]\n", "[params]\nvalid_num = 320\n")
                       .replace('family = ["v0", "v1"]', 'family = ["v1"]'))
    _, runs = sweep.plan(path, tmp_path / "out")
    for run in runs:
        sweep.prepare(run)
    broken = dataclasses.replace(runs[0].params, valid_num=321)
    sweep.write_params(runs[0].folder / sweep.RUN_PARAMS, broken)
    assert sweep.execute(runs, workers=2) == 1
    printed = capsys.readouterr().out
    assert f"FAILED {runs[0].name} (seed 2024): implicit-nn: error: " in printed
    assert f"done {runs[1].name} (seed 2025) in " in printed
    assert runs[1].finished() and not runs[0].finished()
