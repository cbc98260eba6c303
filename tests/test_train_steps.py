"""The driver's block of minibatches between two validations: no Python per minibatch.

Engine.train_steps runs minibatches first … end−1 of the training rows; the numba engine in one
compiled call. Held bit for bit to the reference engine's train_step one minibatch at a time
(rows, short last minibatch, per-minibatch rates); Scheduler.steps to Scheduler.rates; the
driver's vectorised float32 bookkeeping to the original's scalar sums; and a run whose blocks are
cut short (a terminal's redraws) writes the same logs as one that is not.
"""
import sys

import numpy as np
import pytest

from implicit_nn.cli import main
from implicit_nn.driver import EpochTally
from implicit_nn.engine.base import Solves, Steps
from implicit_nn.schedule import Scheduler, logged_rate
from test_driver import setup, train  # noqa: F401  (the run folder fixture)
from test_golden_load import final_row
from test_golden_train import without_et
from test_schedule import make_params
from test_stages import close, data, engines, random_case, same_state

F32 = np.float32


@pytest.mark.parametrize("cyclic", [True, False], ids=["implicit", "levels"])
@pytest.mark.parametrize("optimizer,nesterov", [(1, 1), (3, 0)])
def test_train_steps_in_one_call_equal_single_steps(tmp_path, cyclic, optimizer, nesterov):
    """Minibatches 1 … 5 of 4 rows out of 23 (the last one 3 rows), each with its own rates."""
    params = dict(optimizer=optimizer, nesterov=nesterov, grad_alpha=F32(0.05))
    case = random_case(tmp_path, 40 + optimizer, cyclic, neurons=12, io=3, max_inputs=2,
                       params=params)
    reference, engine = engines(case, "cpu")
    x = data(23, 3, seed=optimizer)
    lr = np.linspace(0.05, 0.01, 5).astype(F32)
    beta1 = np.linspace(0.9, 0.8, 5).astype(F32)
    got = engine.train_steps(x, 1, 6, 4, lr, beta1)
    want = Steps.of(reference.train_step(x[4 * q:4 * q + 4], lr[q - 1], beta1[q - 1])
                    for q in range(1, 6))
    assert len(got) == 5
    for q in range(5):
        for name in ("loss", "maw", "mab", "forward", "backward"):
            close(getattr(got[q], name), getattr(want[q], name), f"minibatch {q} {name}", True)
    same_state(reference, engine, "after the block")


@pytest.mark.parametrize("kind, cyclic, optimizer", [(0, 0, 1), (1, 1, 2), (2, 1, 1), (2, 0, 3),
                                                     (3, 1, 1), (2, 0, 7)])
def test_scheduler_steps_are_the_rates_of_each_minibatch(kind, cyclic, optimizer):
    params = make_params(lr_scheduler=kind, cyclic_momentum=cyclic, optimizer=optimizer,
                         maxiter_grad=3, pcr=0.4, step_size=2)
    sched = Scheduler(params, 7)
    for epoch in (1, 2, 3):
        lr, beta1 = sched.steps(epoch, 2, 7)
        assert lr.dtype == beta1.dtype == F32 and lr.size == 5
        for q, k in enumerate(range(2, 7)):
            lr_w, lr_a, momentum = sched.rates(epoch, k)
            assert lr[q].tobytes() == logged_rate(optimizer, lr_w, lr_a).tobytes()
            assert beta1[q].tobytes() == F32(momentum).tobytes()


def test_epoch_tally_of_a_block_is_the_sequential_float32_sums():
    rng = np.random.default_rng(5)
    loss = rng.uniform(0, 3, 40).astype(F32)
    loss[[7, 30]] = [np.inf, np.nan]
    iterations = rng.integers(1, 50, (2, 40))
    rows = np.array([16] * 39 + [5])
    block, one = EpochTally(), EpochTally()
    for part in (slice(0, 25), slice(25, 40)):        # two blocks of one epoch
        record = block.add(Steps(loss[part], loss[part], loss[part],
                                 Solves.exact(len(rows[part]), iterations[0][part]),
                                 Solves.exact(len(rows[part]), iterations[1][part])), rows[part])
    with np.errstate(all="ignore"):
        for q in range(40):                  # the original's scalar order, one minibatch at a time
            e = F32(F32(loss[q]) * F32(rows[q]))
            one.loss_sum = F32(one.loss_sum + e)
            one.forward_sum = F32(one.forward_sum + F32(iterations[0][q]))
            one.backward_sum = F32(one.backward_sum + F32(iterations[1][q]))
    for name in ("loss_sum", "forward_sum", "backward_sum"):
        assert F32(getattr(block, name)).tobytes() == F32(getattr(one, name)).tobytes(), name
    assert (block.rows, block.minibatches) == (int(rows.sum()), 40)
    assert record.rows == 5 and record.loss_sum == F32(F32(loss[39]) * F32(5))
    assert record.stats.loss.tobytes() == loss[39].tobytes()


class Terminal:
    """stdout as a terminal: the driver then cuts the blocks short for status-line redraws."""

    def __init__(self, stream):
        self.stream = stream

    def isatty(self):
        return True

    def write(self, text):
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def test_blocks_cut_for_a_terminal_write_the_same_logs(setup, monkeypatch, capsys):
    """One compiled call per validation interval (not a terminal) and one per minibatch (a
    terminal redrawing after each): the same logs, final metrics and backup."""
    root = setup(ff_optimization=0, maxiter_grad=2)
    out = root / "out"

    def outputs():
        logs = [without_et(out / name) for name in ("results.dat", "test_metrics.dat")]
        last = final_row(out / "test_metrics_final.dat")
        last.pop("ET")
        files = [(out / name).read_bytes() for name in ("backup.dat", "predict_test.dat")]
        for path in out.iterdir():
            path.unlink()
        return logs, last, files
    assert train() == 0
    plain = outputs()
    monkeypatch.setattr(sys, "stdout", Terminal(sys.stdout))
    for module in ("driver", "console"):        # a call and a redraw per minibatch
        monkeypatch.setattr(f"implicit_nn.{module}.REDRAW_SECONDS", 0.0)
    assert main(["train", "--backend", "cpu"]) == 0
    shown = capsys.readouterr().out
    assert all(f" [{k}/7] LE" in shown for k in (1, 3, 5))        # between validations too
    assert outputs() == plain
