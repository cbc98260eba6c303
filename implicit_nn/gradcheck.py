"""`implicit-nn gradcheck`: the adjoint gradient against central finite differences.

The adjoint gradient is the float32 reference engine's at the parameter file's settings (what
training uses). The finite differences re-evaluate the objective the adjoint differentiates,
    J(w, b) = scale·Σ_d loss_d / B + alpha·Σ_e w_e²     (scale ½ for MSE, engine.md §9, engine Q5)
in float64 with a tight fixed-point tolerance. Errors are relative to max(|adjoint|, |fd|,
1e-3·largest |fd|) so that negligible components do not dominate.
"""
import copy
import dataclasses

import numpy as np

from implicit_nn.engine import make_engine
from implicit_nn.engine.loss_ids import OBJECTIVE_SCALE
from implicit_nn.engine.reference import ReferenceEngine

FD_TOL = 1e-12
FD_MAXITER = 5000
STEP = 1e-6


def _with(params, **changes):
    if dataclasses.is_dataclass(params):
        return dataclasses.replace(params, **changes)
    clone = copy.copy(params)
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone


@dataclasses.dataclass(frozen=True)
class Worst:
    """The worst component of one parameter vector (index -1 when nothing is trainable)."""
    error: float
    index: int
    adjoint: float
    finite_difference: float


def _worst(adjoint, fd, trainable, floor):
    if not trainable.any():
        return Worst(0.0, -1, 0.0, 0.0)
    adjoint, fd = adjoint.astype(np.float64), fd.astype(np.float64)
    denom = np.maximum(np.maximum(np.abs(adjoint), np.abs(fd)), floor)
    error = np.where(trainable, np.abs(adjoint - fd) / denom, -1.0)
    error = np.where(np.isnan(error), np.inf, error)
    i = int(np.argmax(error))
    return Worst(float(error[i]), i, float(adjoint[i]), float(fd[i]))


def finite_differences(network, params, levels, weights, biases, x, step=STEP):
    """Central differences of J in float64 for every trainable weight and bias (others 0)."""
    tight = _with(params, tol_fixit=FD_TOL, maxiter_fix=max(int(params.maxiter_fix), FD_MAXITER))
    engine = ReferenceEngine(network, tight, levels, dtype=np.float64)
    scale = OBJECTIVE_SCALE[engine.loss_kind] / x.shape[0]
    w0, b0 = weights.astype(np.float64), biases.astype(np.float64)

    def partials(values, trainable, loss_of):
        out = np.zeros(values.size)
        for i in np.flatnonzero(trainable):
            h = step * max(1.0, abs(values[i]))
            up, down = values.copy(), values.copy()
            up[i] += h
            down[i] -= h
            out[i] = scale * (loss_of(up) - loss_of(down)) / (up[i] - down[i])
        return out

    gw = partials(w0, engine.weight_trainable, lambda w: engine.loss_at(x, w, b0))
    gw += 2.0 * float(params.alpha) * w0
    gb = partials(b0, engine.bias_trainable, lambda b: engine.loss_at(x, w0, b))
    return gw, gb


def check_gradient(network, params, weights, biases, x, solver=None, backend="reference"):
    """(worst weight, worst bias) comparing the float32 adjoint of `backend`, solved as `solver`
    (solver.SolverOptions; default the original's), with float64 differences."""
    engine = make_engine(network, _with(params, clipping=0), backend, solver=solver)
    x = np.asarray(x, np.float32)
    _, gw, gb, _, _ = engine.gradient(x, weights, biases)
    fw, fb = finite_differences(network, params, engine.levels, weights, biases, x)
    floor = 1e-3 * max(np.abs(fw).max(initial=0.0), np.abs(fb).max(initial=0.0), 1e-30)
    return (_worst(gw, fw, engine.weight_trainable, floor),
            _worst(gb, fb, engine.bias_trainable, floor))


def _report(kind, worst):
    if worst.index < 0:
        return f"{kind}: none trainable"
    item = {"weights": "weight", "biases": "bias"}[kind]
    return (f"{kind}: worst relative error {worst.error:.3e} at {item} {worst.index} "
            f"(adjoint {worst.adjoint:.6e}, finite difference {worst.finite_difference:.6e})")


def _starting_parameters(network, params):
    """The parameters training would start from: the backup (loaddatas 1) or the seeded init."""
    if params.loaddatas == 1:
        from implicit_nn.backup import load_backup
        weights, biases, *_ = load_backup(params.load_backup, network)
        return network.apply_fixed(weights, biases)
    from implicit_nn.rand import GlibcRandom, initial_parameters
    return initial_parameters(network, params.initdx, GlibcRandom(params.seed))


def run_gradcheck(args):
    """Exit status 0 when both worst errors are within --tolerance, 1 otherwise."""
    from implicit_nn.data import read_train
    from implicit_nn.api import solver_of
    from implicit_nn.engine.loss_ids import check_loss_name
    from implicit_nn.errors import InputError
    from implicit_nn.network import read_network
    from implicit_nn.params import read_params, validate

    if args.samples < 1:
        raise InputError(f"must be at least 1, got {args.samples}", "--samples", None)
    params = read_params(args.params)
    # learn_num 0, output_num != input_num, …; not the training-only sfreq / pcr checks
    validate(_with(params, maxiter_grad=0), args.params)
    check_loss_name(params.train_lossfunction_type, args.params)
    network = read_network(params)
    rows = min(args.samples, params.learn_num)
    x = read_train(params.input_name, params.learn_num, params.input_num)[:rows]
    weights, biases = _starting_parameters(network, params)
    solver = solver_of(args)
    worst_w, worst_b = check_gradient(network, params, weights, biases, x, solver)
    print(f"gradcheck: {rows} samples, loss {params.train_lossfunction_type}, "
          f"{'feed-forward' if params.ff_optimization > 0 else 'implicit'} path"
          + (f", {solver.describe()}" if solver.describe() else ""))
    print(_report("weights", worst_w))
    print(_report("biases", worst_b))
    ok = worst_w.error <= args.tolerance and worst_b.error <= args.tolerance
    print(("OK" if ok else "FAILED") + f" (tolerance {args.tolerance:g})")
    return 0 if ok else 1
