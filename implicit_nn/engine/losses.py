"""Loss value, adjoint seed and prediction transform per loss type (engine.md §6, §12).

The original computes all three on the host in float32 with glibc maths; where its expressions
contain double literals they are evaluated in float64 and rounded once (§13.2). The loss sum is
order-sensitive (samples outer, outputs inner) and stays a sequential float32 accumulation.
"""
import math

import numba
import numpy as np

from implicit_nn.engine import activations
from implicit_nn.engine.loss_ids import BCE_MULTILABEL, MAE, MSE, MULTICLASS_CE, MULTILABEL_CE

f32 = np.float32
f64 = np.float64


@numba.njit(cache=True, error_model="numpy")
def loss_sum(kind, y, t):
    """Σ over the minibatch of the per-output contribution (calc_error), float32 accumulation.

    y: network outputs float32[B, O] (lagging y in the implicit path), t: targets float32[B, O].
    """
    total = f32(0.0)
    rows, cols = y.shape
    for d in range(rows):
        if kind == MULTICLASS_CE:
            s = f32(0.0)
            for r in range(cols):
                s = f32(s + f32(math.exp(y[d, r])))
            log_s = f32(math.log(s))
            for r in range(cols):
                total = f32(total - f32(t[d, r] * f32(y[d, r] - log_s)))
            continue
        for r in range(cols):
            yy = y[d, r]
            tt = t[d, r]
            if kind == MSE:
                diff = f32(yy - tt)
                total = f32(total + f32(diff * diff))
            elif kind == MAE:
                total = f32(total + abs(f32(yy - tt)))
            elif kind == MULTILABEL_CE:
                if yy > 0.0 and yy < 1.0:
                    first = f64(f32(tt * f32(math.log(yy))))
                    second = (1.0 - f64(tt)) * f64(f32(math.log(f32(1.0 - f64(yy)))))
                    total = f32(f64(total) - (first + second))
            elif kind == BCE_MULTILABEL:
                soft = f32(math.log(f32(1.0 + f64(f32(math.exp(-yy))))))
                total = f32(f64(total) + ((1.0 - f64(tt)) * f64(yy) + f64(soft)))
    return total


def loss_value64(kind, y, t):
    """The same loss sum in plain float64 (finite differences of the objective in gradcheck)."""
    y, t = np.asarray(y, np.float64), np.asarray(t, np.float64)
    with np.errstate(all="ignore"):
        if kind == MSE:
            return float(np.sum((y - t) ** 2))
        if kind == MAE:
            return float(np.sum(np.abs(y - t)))
        if kind == MULTICLASS_CE:
            return float(-np.sum(t * (y - np.log(np.sum(np.exp(y), axis=1, keepdims=True)))))
        if kind == MULTILABEL_CE:
            inside = (y > 0) & (y < 1)
            terms = -(t * np.log(np.where(inside, y, 0.5)) + (1 - t) * np.log(np.where(inside, 1 - y, 0.5)))
            return float(np.sum(np.where(inside, terms, 0.0)))
        if kind == BCE_MULTILABEL:
            return float(np.sum((1 - t) * y + np.log1p(np.exp(-y))))
    raise ValueError(f"unknown loss id {kind}")


@numba.njit(cache=True, error_model="numpy")
def softmax_row(values, out):
    """The original's host softmax of one sample: max shift, float32 sum of expf in output
    order, expf(v − max − logf(sum)); expf/logf are the C library's."""
    top = values[0]
    for r in range(1, values.size):
        if values[r] > top or values[r] != values[r]:    # NaN propagates (all outputs NaN)
            top = values[r]
    s = f32(0.0)
    for r in range(values.size):
        s = f32(s + f32(math.exp(f32(values[r] - top))))
    log_s = f32(math.log(s))
    for r in range(values.size):
        out[r] = f32(math.exp(f32(f32(values[r] - top) - log_s)))


@numba.njit(cache=True)
def _softmax_rows(y, out):
    for d in range(y.shape[0]):
        softmax_row(y[d], out[d])


def softmax(y):
    """Row-wise host softmax (float32, softmax_row); float64 input: the same formula in float64."""
    y = np.asarray(y)
    if y.dtype != np.float32:
        with np.errstate(all="ignore"):
            shifted = y - y.max(axis=1, keepdims=True)
            return np.exp(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))
    out = np.empty_like(y)
    _softmax_rows(np.ascontiguousarray(y), out)
    return out


def output_transform(kind, y):
    """Prediction vector from the output neuron values: softmax, sigmoid or identity (§12)."""
    if kind == MULTICLASS_CE:
        return softmax(y)
    if kind == BCE_MULTILABEL:
        with np.errstate(all="ignore"):
            if np.asarray(y).dtype == np.float64:
                return activations.act_value64(np.int64(activations.SIGMOID), y)
            return activations.host_sigmoid_value(y)
    return np.array(y)


def adjoint_seed(kind, y, t, h, slot_output):
    """Seed S of the adjoint for the input slots of the output neurons (§6 table).

    y, t: [B, O]; h: H at those slots, [B, S]; slot_output: int64[S], the output index r owning
    each slot. Returns [B, S] in the dtype of h (float32 as the original; float64 for checks).
    """
    with np.errstate(all="ignore"):
        p = output_transform(kind, y)
        ps = p[:, slot_output]
        ts = np.asarray(t, dtype=h.dtype)[:, slot_output]
        if kind in (MSE, MULTICLASS_CE):
            return (ps - ts) * h
        if kind == MAE:
            return np.where(ps - ts >= 0, h, -h)
        if kind == MULTILABEL_CE:
            inside = (ps > 0.0) & (ps < 1.0)
            ratio = ((ps - ts) * h).astype(np.float64) / (ps.astype(np.float64) * (1.0 - ps.astype(np.float64)))
            return np.where(inside, ratio, 0.0).astype(h.dtype)
        if kind == BCE_MULTILABEL:
            return ps - ts
    raise ValueError(f"unknown loss id {kind}")
