"""`implicit-nn check --contraction`: is the fixed-point map a contraction at the data?

The forward solve iterates a ← x̂ + W·F(a) + b and the adjoint solve T ← Jᵀ T with the Jacobian
J = ∂a_new/∂a of that map; both converge (for small errors) exactly when the spectral radius
ρ(J) < 1, and their errors shrink by about ρ per sweep. J is sample-specific: it depends on the
pre-activations at the fixed point through the local derivatives H. On the acyclic part of a
graph J is nilpotent (eigenvalues 0), so ρ is a property of the cyclic part: the neurons that lie
on a path from a cycle to a cycle (every cycle included), found by peeling off, again and again,
the neurons without incoming or without outgoing edges.

ρ is estimated per sample by power iteration with the engine's own adjoint step
Jᵀv = H ⊙ (Wᵀ v) (reference engine, float64) restricted to the cyclic part: the mean log growth
of ‖(Jᵀ)ᵏ v‖ over the second half of the iterations, which also handles complex or negative
dominant eigenvalues. H is taken at the float64 fixed point of each sample (or at the last
iterate when that solve does not converge).
"""

import dataclasses
import math

import numpy as np

from implicit_nn.engine.reference import ReferenceEngine

POWER_ITERATIONS = 200
SOLVE_TOL = 1e-12
SOLVE_MAXITER = 2000
SETTLED_CHANGE = 1e-8


def cyclic_neurons(network):
    """Boolean mask of the neurons on a path from a cycle to a cycle (cycles included)."""
    src, dst = np.asarray(network.edge_source), np.asarray(network.graph_n)
    alive = np.ones(network.neuron_num, bool)
    while True:
        live_edge = alive[src] & alive[dst]
        has_in = np.bincount(dst[live_edge], minlength=alive.size) > 0
        has_out = np.bincount(src[live_edge], minlength=alive.size) > 0
        keep = alive & has_in & has_out
        if np.array_equal(keep, alive):
            return alive
        alive = keep


@dataclasses.dataclass(frozen=True)
class Contraction:
    """Per-sample spectral radii and the float64 forward solve they were taken at. `settled`:
    the sample's own change in one more sweep after the solve is negligible (its iteration found
    a fixed point); where it is not, the iteration oscillates or diverges and rho, taken at the
    last iterate, describes no fixed point."""
    rho: np.ndarray              # float64[samples]; 0 on a graph without cycles
    settled: np.ndarray          # bool[samples]
    cyclic_neurons: int
    cyclic_slots: int
    solve_iterations: int
    solve_converged: bool
    solve_residual: float
    engine_solves: object = None   # the float32 engine's forward Solves on the same rows
    @property
    def rho_at_fixed_points(self):
        """rho of the samples that settled on a fixed point."""
        return self.rho[self.settled & np.isfinite(self.rho)]

    def sweeps_to(self, tol, start=1.0):
        """Sweeps for an error of `start` to fall to `tol` at the worst settled sample's rate."""
        at = self.rho_at_fixed_points
        worst = float(np.max(at)) if at.size else 0.0
        if worst >= 1 or not math.isfinite(worst):
            return math.inf
        if worst == 0:
            return 1
        return max(1, math.ceil(math.log(tol / start) / math.log(worst)))


def estimate(network, params, weights, biases, x, iterations=POWER_ITERATIONS, seed=0):
    """Contraction of the fixed-point map at the rows of x with these parameters."""
    tight = dataclasses.replace(params, tol_fixit=np.float32(SOLVE_TOL),
                                maxiter_fix=max(int(params.maxiter_fix), SOLVE_MAXITER))
    engine = ReferenceEngine(network, tight, None, dtype=np.float64)
    w, b = np.asarray(weights, np.float64), np.asarray(biases, np.float64)
    x = np.asarray(x, np.float64)
    cyclic = cyclic_neurons(network)
    slots = cyclic[np.asarray(network.slot_owner)]
    with np.errstate(all="ignore"):
        _, a, solve = engine.forward_implicit(x, w, b)
        h = engine.local_derivatives(a)
        settled = _settled(network, params, x, w, b, a, solve.iterations)
    rho = np.zeros(x.shape[0])
    if slots.any():
        rho = _power_iteration(engine, network, h, w, slots, iterations, seed)
    single = ReferenceEngine(network, params, None)          # what training's solves do
    single.set_parameters(weights, biases)
    single.predict(np.asarray(x, np.float32), params.mini_batch_size)
    return Contraction(rho, settled, int(cyclic.sum()), int(slots.sum()),
                       int(solve.iterations), bool(solve.converged), float(solve.residual),
                       single.predict_solves)


def _settled(network, params, x, w, b, a, sweeps):
    """Per sample: does one more forward sweep after the solve's `sweeps` (ending at `a`) change
    the sample by at most SETTLED_CHANGE relative to its size? (The batch-wide stop test only
    says so for the batch's worst sample.) The solve is repeated with one sweep more."""
    once_more = dataclasses.replace(params, tol_fixit=np.float32(0), maxiter_fix=sweeps + 1)
    _, a_next, _ = ReferenceEngine(network, once_more, None, np.float64).forward_implicit(x, w, b)
    change = np.max(np.abs(a_next - a), axis=1, initial=0.0)
    size = np.max(np.abs(a), axis=1, initial=0.0)
    return change <= SETTLED_CHANGE * np.maximum(size, 1.0)


def _power_iteration(engine, network, h, w, slots, iterations, seed):
    """Per-sample growth rate of ‖(Jᵀ)ᵏ v‖ restricted to `slots` (float64[samples])."""
    owner = np.asarray(network.slot_owner)
    neurons = np.flatnonzero(engine.evaluated)
    v = np.random.default_rng(seed).standard_normal(h.shape) * slots
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    logs = np.zeros((iterations, h.shape[0]))
    with np.errstate(all="ignore"):
        for k in range(iterations):
            sums = np.zeros((h.shape[0], network.neuron_num))
            sums[:, neurons] = engine.child_sums(v, w, neurons)
            v = sums[:, owner] * h * slots                      # Jᵀ v on the cyclic part
            norm = np.linalg.norm(v, axis=1)
            logs[k] = np.log(norm)
            v = v / np.where(norm > 0, norm, 1.0)[:, None]
    tail = logs[iterations // 2:]
    return np.where(np.isneginf(tail).any(axis=0), 0.0, np.exp(tail.mean(axis=0)))


def report(c, params, what):
    """The lines `check --contraction` prints."""
    rho = c.rho
    lines = [f"Contraction:        {what}",
             f"  cyclic part:      {c.cyclic_neurons} neurons, {c.cyclic_slots} inputs"]
    if c.cyclic_neurons == 0:
        lines.append("  no cycles: the Jacobian is nilpotent (rho = 0); every solve ends after "
                     "depth + 2 sweeps")
        return lines
    solve = (f"converged in {c.solve_iterations} sweeps" if c.solve_converged else
             f"NOT converged after {c.solve_iterations} sweeps (last change "
             f"{c.solve_residual:.3g})")
    lines.append(f"  float64 solve:    {solve}; {int(c.settled.sum())} of {rho.size} samples "
                 "settled on a fixed point")
    if c.engine_solves is not None:
        it = c.engine_solves.iterations
        lines.append(f"  float32 solves:   {it.size} minibatches of {params.mini_batch_size}: "
                     f"{it.mean():.1f} sweeps on average, {it.max()} at most, "
                     f"{int(np.sum(~c.engine_solves.converged))} stopped by maxiter_fix "
                     f"{params.maxiter_fix} or a NaN")
    at = c.rho_at_fixed_points
    if at.size:
        lines.append(f"  rho at the fixed points: max {at.max():.4f}, median {np.median(at):.4f}, "
                     f"95th percentile {np.percentile(at, 95):.4f}, min {at.min():.4f}; "
                     f">= 1 in {int(np.sum(at >= 1))} of {at.size}")
    unsettled = int(np.sum(~c.settled))
    tol, cap = float(params.tol_fixit), int(params.maxiter_fix)
    if unsettled:
        lines.append(f"  verdict:          NOT converging: for {unsettled} of {rho.size} samples "
                     "the iteration from x̂ finds no fixed point (it oscillates or diverges), so "
                     "their minibatches' forward solves stop at maxiter_fix and their gradients "
                     "are unreliable")
    elif np.any(at >= 1):
        lines.append(f"  verdict:          NOT a contraction at {int(np.sum(at >= 1))} samples "
                     "(rho >= 1): their fixed points repel small errors; the forward and adjoint "
                     f"iterations of their minibatches stall or diverge (maxiter_fix {cap})")
    else:
        sweeps = c.sweeps_to(tol)
        lines.append(f"  verdict:          a contraction: forward and adjoint errors shrink by "
                     f"about {at.max():.3f} per sweep (worst sample); from 1 to tol_fixit "
                     f"{tol:g} in about {sweeps} sweeps"
                     + (f", more than maxiter_fix {cap}" if sweeps > cap else
                        f" (maxiter_fix {cap})"))
    return lines


def run_contraction(params, network, load, samples):
    """Lines of `check --contraction`: the backup `load` (or the starting parameters) on the
    first `samples` training rows."""
    from implicit_nn.api import load_network
    from implicit_nn.data import read_train

    backup = load if load is not None else (params.load_backup if params.loaddatas == 1
                                            else None)
    model = load_network(params, backup)
    rows = min(samples, params.learn_num)
    x = read_train(params.input_name, params.learn_num, params.input_num)[:rows]
    c = estimate(network, params, model.weights, model.biases, x)
    what = (f"backup {backup}" if backup is not None else "the seeded starting parameters") + \
        f", first {rows} training rows"
    return report(c, params, what)
