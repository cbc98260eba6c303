"""Checkpoints and --resume: a run killed with SIGKILL mid-epoch and resumed writes the same files,
byte for byte, as a run that was never interrupted (elapsed times and header dates aside)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import implicit_nn
from conftest import example_here, example_params
from implicit_nn import checkpoint
from implicit_nn.errors import InputError

FILES = ("results_small_1.dat", "test_metrics_small_1.dat", "test_metrics_final_small_1.dat",
         "predict_valid_small_1.dat", "predict_test_small_1.dat",
         "backup_best_autoencoder_small_1.dat", "stats.csv")
LOGS = FILES[:3]


def without_times(name, text):
    """A log without its ET column and its headers' dates; other files as they are."""
    if name not in LOGS:
        return text
    lines = []
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("|") and cells[1].strip().isdigit():
            line = "|".join(cells[:-2])                  # ... | ET | \n: drop ET
        elif line.startswith("|"):
            line = "|".join(cells[:-1])                  # header: drop the ctime
        lines.append(line)
    return lines


def outputs_of(folder):
    return {name: without_times(name, (folder / "outputs" / name).read_text())
            for name in FILES}


def cli(folder, *args):
    return [sys.executable, "-m", "implicit_nn", "train", "--quiet", "--backend", "cpu",
            "--stats", "outputs/stats.csv", *args]


def test_sigkill_mid_epoch_then_resume_gives_the_same_files(tmp_path, monkeypatch):
    """4 epochs of 64 minibatches, a checkpoint every 5 (never at an epoch's end), SIGKILL once
    the second epoch has begun; then --resume."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    example_here(whole, monkeypatch, maxiter_grad=4)
    subprocess.run(cli(whole), cwd=whole, check=True)
    example_here(killed, monkeypatch, maxiter_grad=4)
    results = killed / "outputs" / "results_small_1.dat"
    proc = subprocess.Popen(cli(killed, "--checkpoint-every", "5"), cwd=killed)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n|         2 |"):
            break                                       # a validation of epoch 2 is logged
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    ckpt = checkpoint.load(killed / "outputs" / "results_small_1.dat.ckpt")
    epoch, minibatch, _ = ckpt.meta["position"]
    assert epoch == 2 and 0 < minibatch < 64                 # mid-epoch
    assert not (killed / "outputs" / "test_metrics_final_small_1.dat").exists()
    subprocess.run(cli(killed, "--resume", "outputs/results_small_1.dat.ckpt",
                       "--checkpoint-every", "5"), cwd=killed, check=True)
    assert outputs_of(killed) == outputs_of(whole)
    assert not list((killed / "outputs").glob("*.tmp*"))


@pytest.mark.parametrize("settings", [
    dict(optimizer=2, lr_scheduler=1, cyclic_momentum=1),                  # Adam, one-cycle
    dict(optimizer=3, early_stopping=3),                                   # Adamax, stopping
    dict(optimizer=1, nesterov=1, sfreq=5)])
def test_resume_from_any_checkpoint_continues_the_same_run(tmp_path, settings):
    """Resuming from the last checkpoint of a finished run writes everything again, identically:
    optimiser moments and β products, scheduler position, early-stopping counter, stats tallies."""
    params = example_params(tmp_path, maxiter_grad=3, **settings)
    stats = tmp_path / "outputs" / "stats.csv"
    first = implicit_nn.train(params, backend="cpu", stats=stats, checkpoint_every=37)
    before = outputs_of(tmp_path)
    ckpt = tmp_path / "outputs" / "results_small_1.dat.ckpt"
    assert checkpoint.load(ckpt).meta["position"][1] != 0
    again = implicit_nn.train(params, backend="cpu", stats=stats, resume=ckpt)
    assert outputs_of(tmp_path) == before
    assert [(r.epoch, r.minibatch, r.loss, r.metric) for r in again.history] == \
        [(r.epoch, r.minibatch, r.loss, r.metric) for r in first.history]
    assert again.stopped == first.stopped and again.final.valid_f1 == first.final.valid_f1


def test_checkpoint_holds_the_optimizer_and_random_state(tmp_path):
    params = example_params(tmp_path, maxiter_grad=1, optimizer=2)
    implicit_nn.train(params, backend="cpu", checkpoint_every=10)
    ckpt = checkpoint.load(tmp_path / "outputs" / "results_small_1.dat.ckpt")
    assert ckpt.meta["steps"] == 60 and ckpt.meta["position"][:2] == [1, 60]
    products = np.ones(2, np.float32)               # Adam's β products after 60 steps
    for _ in range(60):
        products *= np.array([0.9, 0.999], np.float32)
    assert np.array_equal(ckpt.arrays["betas"], products)
    assert np.any(ckpt.arrays["m_w"] != 0) and ckpt.arrays["rng_state"].dtype == np.uint32
    assert sorted(ckpt.arrays["train_x"][:, 0]) == sorted(
        np.loadtxt(params.input_name, dtype=np.float32)[:, 0])      # the rows, shuffled


def test_resume_refuses_another_run(tmp_path):
    params = example_params(tmp_path, maxiter_grad=1)
    implicit_nn.train(params, backend="cpu", checkpoint_every=20)
    ckpt = tmp_path / "outputs" / "results_small_1.dat.ckpt"
    with pytest.raises(InputError, match="entry 'seed' is 7 here but 2024"):
        implicit_nn.train(implicit_nn.with_overrides(params, seed=7), resume=ckpt)
    with pytest.raises(InputError, match="same --stats"):
        implicit_nn.train(params, backend="cpu", resume=ckpt, stats=tmp_path / "s.csv")
    with pytest.raises(InputError, match="the reference engine|same --backend"):
        implicit_nn.train(params, backend="reference", resume=ckpt)
    (tmp_path / "outputs" / "results_small_1.dat").write_text("changed\n")
    with pytest.raises(InputError, match="not what it was at the checkpoint"):
        implicit_nn.train(params, backend="cpu", resume=ckpt)
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        implicit_nn.train(params, backend="cpu", resume=tmp_path / "junk.ckpt")


def test_resume_refuses_changed_data(tmp_path, monkeypatch):
    example_here(tmp_path, monkeypatch, maxiter_grad=1)
    data = tmp_path / "train.dat"
    data.write_bytes((tmp_path / "examples/small/data/train.dat").read_bytes())
    params = implicit_nn.read_params("inputs/simulparams.dat", input_name="train.dat")
    implicit_nn.train(params, backend="cpu", checkpoint_every=20)
    data.write_text(data.read_text().replace("0", "1", 1))
    with pytest.raises(InputError, match="input_name 'train.dat' changed since the checkpoint"):
        implicit_nn.train(params, backend="cpu", resume="outputs/results_small_1.dat.ckpt")
    assert os.path.getsize("outputs/results_small_1.dat") > 0
