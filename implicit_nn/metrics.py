"""Validation metrics of the original, bit for bit in float32 (driver.md §5, §6 steps 5-7).

API (arrays are numpy; scalars numpy.float32):
  reconstruction_errors(pred, x, loss_type) -> err[n]      per-sample RMSE (MSE) / MAE / zeros
  zscore_stats(err, labels) -> (mean, std)                  over the label-0 samples
  zscores(err, mean, std) -> z[n]
  thresholds(range_div) -> th[R+1]
  threshold_sweep(z, labels, range_div) -> Sweep(th, tpr, fpr, f1, mcc)
  best_threshold(values, th) -> (best, th_best)             first strict maximum, NaN never wins
  auc(fpr, tpr) -> float32                                  the original's exchange sort + trapz
  confusion_metrics(z, labels, th) -> Confusion(tpr, fpr, f1, accuracy, precision, mcc)

Zero denominators give -nan (x86's default NaN from 0/0), except MCC which is 0 (current source).
Samples whose label is neither 0 nor 1 are counted nowhere (driver Q28).
"""

from typing import NamedTuple

import numpy as np
from numba import njit

f32 = np.float32
INF = f32(1e20)


def _square(d):
    """f32 of the exact square (the original's powf(d, 2.0)); inf beyond float32, as powf."""
    with np.errstate(over="ignore"):
        return (d.astype(np.float64) ** 2).astype(f32)


def _seq_sum(values):
    """Left-to-right float32 sum, as a C loop `s += v`."""
    if values.size == 0:
        return f32(0.0)
    with np.errstate(over="ignore", invalid="ignore"):      # inf / NaN sums as in C
        return np.cumsum(values, dtype=f32)[-1]


def reconstruction_errors(pred, x, loss_type):
    """Per-sample error between predictions and targets (= the first output_num inputs)."""
    pred = np.asarray(pred, dtype=f32)
    n, outputs = pred.shape
    err = np.zeros(n, dtype=f32)
    if loss_type not in ("MSE", "MAE"):
        return err
    diff = pred - np.asarray(x, dtype=f32)[:, :outputs]
    terms = _square(diff) if loss_type == "MSE" else np.abs(diff)
    for j in range(outputs):             # sequential over outputs, vectorised over samples
        err = err + terms[:, j]
    err = err / f32(outputs)
    return np.sqrt(err) if loss_type == "MSE" else err


def zscore_stats(err, labels):
    """Mean and sample std of the label-0 errors, sequential float32 sums (§5.2)."""
    normal = np.asarray(err, dtype=f32)[np.asarray(labels) == 0]
    n = normal.size
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = f32(_seq_sum(normal) / f32(n))
        var = f32(_seq_sum(_square(normal - mean)) / f32((n - 1) % 2**64))
    return mean, f32(np.sqrt(var))


def zscores(err, mean, std):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(err, dtype=f32) - f32(mean)) / f32(std)


def thresholds(range_div):
    """th_t = f32(-4 + t*8.0/f32(R)) in double, t = 0..R."""
    t = np.arange(range_div + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (-4.0 + t * 8.0 / np.float64(f32(range_div))).astype(f32)


class Confusion(NamedTuple):
    tpr: object
    fpr: object
    f1: object
    accuracy: object
    precision: object
    mcc: object


def _rates(tp, fp, tn, fn):
    """calculate_tpr_fpr_bc and calculate_mcc on integer counts (scalars or arrays)."""
    tp, fp, tn, fn = (np.asarray(c, dtype=np.int64) for c in (tp, fp, tn, fn))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        recall = tp.astype(f32) / (tp + fn).astype(f32)       # integer sums, converted once
        fpr = fp.astype(f32) / (tn + fp).astype(f32)
        precision = tp.astype(f32) / (tp + fp).astype(f32)
        tp, fp, tn, fn = (c.astype(f32) for c in (tp, fp, tn, fn))
        f1 = (2.0 * precision.astype(np.float64) * recall / (precision + recall).astype(np.float64)).astype(f32)
        accuracy = (tp + tn) / (tp + tn + fp + fn)
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denom > 0, (tp * tn - fp * fn) / denom, f32(0.0)).astype(f32)
    return Confusion(recall, fpr, f1, accuracy, precision, mcc)


def confusion_metrics(z, labels, th):
    """Metrics of the prediction `z > th` (strict) against 0/1 labels."""
    positive = np.asarray(z, dtype=f32) > f32(th)
    labels = np.asarray(labels)
    tp = np.count_nonzero(positive & (labels == 1))
    fp = np.count_nonzero(positive & (labels == 0))
    tn = np.count_nonzero(~positive & (labels == 0))
    fn = np.count_nonzero(~positive & (labels == 1))
    return Confusion(*(f32(v) for v in _rates(tp, fp, tn, fn)))


class Sweep(NamedTuple):
    th: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    f1: np.ndarray
    mcc: np.ndarray


def _count_above(values, th):
    """For every threshold, how many non-NaN values are strictly above it (sort once)."""
    ordered = np.sort(values[~np.isnan(values)])
    return ordered.size - np.searchsorted(ordered, th, side="right")


def threshold_sweep(z, labels, range_div):
    """TPR/FPR/F1/MCC of `z > th_t` for the R+1 thresholds of §5.3."""
    z = np.asarray(z, dtype=f32)
    labels = np.asarray(labels)
    th = thresholds(range_div)
    normal, anomal = z[labels == 0], z[labels == 1]
    tp = _count_above(anomal, th)
    fp = _count_above(normal, th)
    rates = _rates(tp, fp, normal.size - fp, anomal.size - tp)
    return Sweep(th, rates.tpr, rates.fpr, rates.f1, rates.mcc)


def best_threshold(values, th):
    """(best value, its threshold): first strict maximum above -INF; (-INF, -INF) if none."""
    scores = np.where(np.isnan(values), -np.inf, values)
    t = int(np.argmax(scores))
    if scores[t] > -INF:
        return f32(values[t]), f32(th[t])
    return -INF, -INF


@njit(cache=True)
def _exchange_sort(fpr, tpr):
    """The original's in-place exchange sort by ascending FPR (O(n^2), any input)."""
    n = fpr.size
    for i in range(n - 1):
        for j in range(i + 1, n):
            if fpr[j] < fpr[i]:
                fpr[i], fpr[j] = fpr[j], fpr[i]
                tpr[i], tpr[j] = tpr[j], tpr[i]


@njit(cache=True)
def _trapz(x, y):
    """area += dx*(y[i+1]+y[i])*0.5 with C's float/double promotions."""
    area = np.float32(0.0)
    for i in range(x.size - 1):
        dx = np.float32(x[i + 1] - x[i])
        step = np.float32(dx * np.float32(y[i + 1] + y[i]))
        area = np.float32(np.float64(area) + np.float64(step) * 0.5)
    return area


def _sorted_non_increasing(fpr, tpr):
    """Exchange-sort result for a non-increasing fpr, in O(n).

    On a non-increasing array each pass moves the first item of the smallest-valued group to the
    front and rotates every other group of equal values left by one (its first item lands on the
    next group's first slot, i.e. its own last slot; values stay non-increasing behind the front).
    A group therefore leaves in its original order rotated by the number of items sorted before
    it, f = count of smaller items: block offset q holds original offset (q + f) mod size.
    """
    n = fpr.size
    starts = np.flatnonzero(np.r_[True, fpr[1:] < fpr[:-1]])
    sizes = np.diff(np.r_[starts, n])
    start = np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    offset = np.arange(n) - start
    front = n - start - size                       # final position of the group's block
    final = front + (offset - front) % size
    out_fpr = np.empty_like(fpr)
    out_tpr = np.empty_like(tpr)
    out_fpr[final] = fpr
    out_tpr[final] = tpr
    return out_fpr, out_tpr


def auc(fpr, tpr):
    """calculate_auc: exchange sort by FPR (tie order as the original) then trapz; inputs kept."""
    fpr = np.array(fpr, dtype=f32)
    tpr = np.array(tpr, dtype=f32)
    if fpr.size > 1 and np.all(fpr[1:] <= fpr[:-1]):   # every threshold sweep (NaN-free) is so
        fpr, tpr = _sorted_non_increasing(fpr, tpr)
    else:
        _exchange_sort(fpr, tpr)
    return f32(_trapz(fpr, tpr))
