"""Schedulers against the golden LR column (G1) and hand-computed values (driver.md §4.1)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from implicit_nn.cformat import cfmt
from implicit_nn.errors import InputError
from implicit_nn.schedule import Scheduler, f_lr_momentum, logged_rate

f32 = np.float32


def make_params(**changes):
    """The parameter set of the published HTRU2 runs (§12), with overrides."""
    values = dict(lr_scheduler=2, cyclic_momentum=0, maxiter_grad=20, grad_alpha=0.01, adam_alpha=1e-3,
                  adam_beta1=0.9, base_momentum=0.85, max_momentum=0.95, div_factor=10.0,
                  final_div_factor=10.0, step_size=1, lr_gamma=0.5, pcr=1.0, optimizer=1)
    values.update(changes)
    return SimpleNamespace(**{k: (f32(v) if isinstance(v, float) else v) for k, v in values.items()})


def test_g1_lr_column_all_rows(reference):
    path = next((reference / "training" / "v0_5_32_8").glob("results_*_1.dat"))
    rows = [line.split("|") for line in path.read_text().splitlines() if line.startswith("|") and "ITER" not in line]
    assert len(rows) == 240
    params = make_params()
    sched = Scheduler(params, 823)
    assert sched.cut == 16461
    for row in rows:
        epoch, mb, lr_text = int(row[1]), int(row[2]), row[10]
        lr_w, lr_a, _ = sched.rates(epoch, mb - 1)
        assert cfmt("%10.2E", logged_rate(params.optimizer, lr_w, lr_a)) + " " == lr_text, (epoch, mb)


def test_f_lr_momentum_end_points():
    # i = 0 gives end + (start - end) in double, i.e. start up to one float32 rounding
    assert f_lr_momentum(0, f32(0.001), f32(0.01), 100) == f32(float(f32(0.01)) + float(f32(f32(0.001) - f32(0.01))))
    assert abs(f_lr_momentum(0, f32(0.001), f32(0.01), 100) - f32(0.001)) < 1e-9
    assert f_lr_momentum(100, f32(0.001), f32(0.01), 100) == f32(0.01)
    mid = f_lr_momentum(50, f32(0.001), f32(0.01), 100)
    assert mid == f32(float(f32(0.01)) + float(f32(f32(0.001) - f32(0.01))) * 0.5 * (1 + float(f32(math.cos(float(f32(math.pi / 2)))))))


def test_scheduler0_and_unknown_are_constant():
    for kind in (0, 7):
        sched = Scheduler(make_params(lr_scheduler=kind, cyclic_momentum=1), 10)
        assert sched.rates(3, 4) == (f32(0.01), f32(1e-3), f32(0.9))


def test_scheduler1_one_cycle_by_hand():
    # T = 2 epochs * 10 = 20 steps, pcr 0.3 -> cut = trunc(f32(20 * f32(0.3))) = 6
    params = make_params(lr_scheduler=1, cyclic_momentum=1, maxiter_grad=2, pcr=0.3)
    sched = Scheduler(params, 10)
    assert sched.cut == 6
    lr_w, lr_a, beta1 = sched.rates(1, 0)           # A = 1 < cut: warm-up from alpha/div
    assert lr_w == f_lr_momentum(1, f32(f32(0.01) / f32(10.0)), f32(0.01), 6)
    assert beta1 == f_lr_momentum(1, f32(0.95), f32(0.85), 6)
    lr_w, lr_a, beta1 = sched.rates(1, 5)           # A = 6 = cut: annealing starts at alpha
    assert lr_w == f32(0.01) and lr_a == f32(1e-3) and beta1 == f32(0.85)
    lr_w, lr_a, beta1 = sched.rates(2, 9)           # A = T: alpha / (div * final_div)
    assert lr_w == f32(f32(f32(0.01) / f32(10.0)) / f32(10.0)) and beta1 == f32(0.95)
    assert sched.rates(1, 2)[0] < sched.rates(1, 4)[0] < f32(0.01)


def test_scheduler2_cyclic_momentum_wraps_unsigned():
    # driver Q7: (A' - cut) and (T - cut) wrap to ~2^64; both round to f32 2^64, so the cosine argument is
    # pi and the momentum is max_momentum exactly when pcr = 1.
    sched = Scheduler(make_params(cyclic_momentum=1), 823)
    for epoch, k in ((1, 0), (7, 400), (20, 822)):
        assert sched.rates(epoch, k)[2] == f32(0.95)
    # pcr = 0.5: T - cut is a normal number, A' - cut still wraps to 2^64
    sched = Scheduler(make_params(cyclic_momentum=1, pcr=0.5), 10)
    assert sched.cut == 101
    expected = f32(float(f32(0.95)) + float(f32(f32(0.85) - f32(0.95))) * 0.5
                   * (1.0 + float(f32(math.cos(float(f32(math.pi / 99.0 * 2.0**64)))))))
    assert sched.rates(1, 0)[2] == expected


def test_scheduler2_rate_by_hand():
    sched = Scheduler(make_params(maxiter_grad=1), 4)   # cut = 5
    lr_w = sched.rates(1, 1)[0]                          # A' = 2
    cos = float(f32(math.cos(float(f32(float(f32(f32(2) / f32(5))) * math.pi)))))
    a_min = f32(f32(0.01) / f32(10.0))
    assert lr_w == f32(float(a_min) + 0.5 * float(f32(f32(0.01) - a_min)) * (1.0 + cos))


def test_scheduler3_step_decay():
    sched = Scheduler(make_params(lr_scheduler=3, step_size=2, lr_gamma=0.5, cyclic_momentum=1), 10)
    assert sched.rates(1, 3)[:2] == (f32(0.01), f32(1e-3))
    assert sched.rates(3, 0) == (f32(0.01 * 0.5), f32(float(f32(1e-3)) * 0.5), f32(0.9))
    assert sched.rates(6, 9)[0] == f32(float(f32(0.01)) * 0.25)


def test_scheduler3_step_size_zero_is_an_error():
    with pytest.raises(InputError, match="step_size"):
        Scheduler(make_params(lr_scheduler=3, step_size=0), 10)


def test_logged_rate():
    assert logged_rate(1, f32(0.1), f32(0.2)) == f32(0.1)
    assert logged_rate(3, f32(0.1), f32(0.2)) == f32(0.2)
    assert cfmt("%10.2E", logged_rate(0, f32(0.1), f32(0.2))) == "  0.00E+00"


def test_one_cycle_with_pcr_1_ends_on_a_nan_rate_as_in_c():
    # cut = T: the last step anneals over a period of 0, pi/0 * 0 = NaN in C (no crash)
    sched = Scheduler(make_params(lr_scheduler=1, cyclic_momentum=1, maxiter_grad=2, pcr=1.0), 10)
    lr_w, lr_a, beta1 = sched.rates(2, 8)
    assert math.isfinite(lr_w) and math.isfinite(lr_a) and math.isfinite(beta1)
    assert all(math.isnan(v) for v in sched.rates(2, 9))
    assert math.isnan(f_lr_momentum(0, f32(1.0), f32(0.5), 0))


@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("pcr", [-np.inf, -1e39, np.inf, np.nan])
def test_non_finite_pcr_is_an_error(kind, pcr):
    """-inf (e.g. -1e39 read as float32) went on to int(-inf): an OverflowError traceback."""
    with np.errstate(over="ignore"):
        pcr = np.float32(pcr)
    with pytest.raises(InputError, match="not a 64-bit step count"):
        Scheduler(make_params(lr_scheduler=kind, pcr=pcr), 10)


def test_infinite_rates_without_numpy_warnings():
    import warnings
    s = Scheduler(make_params(lr_scheduler=2, grad_alpha=np.float32(np.inf)), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lr_w, _, _ = s.rates(1, 0)
    assert np.isnan(lr_w)
