"""One run per set of outputs (runlock.py), and the leftovers of killed runs (atomic.py)."""

import os
import socket
import subprocess
import sys

import pytest

from implicit_nn.errors import InputError
from implicit_nn.runlock import RunLock
from test_driver import log_rows, setup, train  # noqa: F401  (the run folder fixture)


@pytest.fixture
def live_pid():
    """The pid of a process that stays alive during the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_on_the_same_outputs_stops_at_start(setup, capsys, live_pid):
    """While another run holds the lock, a run on the same outputs writes nothing."""
    root = setup()
    lock = root / "out/results.dat.lock"
    lock.write_text(f"{live_pid} {socket.gethostname()}\n")
    assert train() == 1
    err = capsys.readouterr().err
    assert err == (f"implicit-nn: error: {lock.relative_to(root)}: another run (PID {live_pid}) "
                   "is writing these outputs; wait for it to end, or remove this lock file if it "
                   "is gone\n")
    assert sorted(p.name for p in (root / "out").iterdir()) == ["results.dat.lock"]
    assert lock.read_text() == f"{live_pid} {socket.gethostname()}\n"


def test_stale_lock_of_a_killed_run_is_taken_over(setup):
    root = setup(maxiter_grad=1)
    (root / "out/results.dat.lock").write_text(f"{dead_pid()} {socket.gethostname()}\n")
    assert train() == 0
    assert len(log_rows(root / "out/results.dat")) == 4
    assert not (root / "out/results.dat.lock").exists()          # removed at the end


def test_lock_of_another_host_or_without_owner_is_respected(tmp_path):
    lock = tmp_path / "r.dat.lock"
    lock.write_text("123 some-other-host\n")
    with pytest.raises(InputError, match=r"another run \(PID 123 on some-other-host\)"):
        RunLock(tmp_path / "r.dat").__enter__()
    lock.write_text("")
    with pytest.raises(InputError, match="lock file that names no process"):
        RunLock(tmp_path / "r.dat").__enter__()
    assert lock.exists()


def test_lock_is_held_during_the_run_and_removed_after_an_error(setup, monkeypatch):
    """The lock exists while the run writes, and goes when the run ends in any way."""
    root = setup(maxiter_grad=1)
    import implicit_nn.driver as driver
    seen = []

    def fail_after_first_epoch(self, epoch):
        seen.append((root / "out/results.dat.lock").read_text())
        raise KeyboardInterrupt
    monkeypatch.setattr(driver.Run, "epoch", fail_after_first_epoch)
    assert train() == 1
    assert seen == [f"{os.getpid()} {socket.gethostname()}\n"]
    assert not (root / "out/results.dat.lock").exists()


def test_temp_files_of_killed_runs_are_removed_at_start(setup, live_pid):
    """`<output>.tmp<pid>` of a dead process goes; that of a live process (a write in
    progress) stays; other files stay."""
    root = setup(maxiter_grad=1)
    gone = dead_pid()
    stale = [root / f"out/backup.dat.tmp{gone}", root / f"out/predict_valid.dat.tmp{gone}",
             root / "out/predict_test.dat.tmp99999999999"]
    kept = [root / f"out/backup.dat.tmp{live_pid}", root / "out/backup.dat.tmpx",
            root / f"out/results.dat.tmp{gone}"]
    for path in stale + kept:
        path.write_text("half a file")
    assert train() == 0
    assert [p.exists() for p in stale] == [False] * 3
    assert [p.exists() for p in kept] == [True] * 3
