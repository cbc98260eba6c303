"""Engines: one interface (engine/base.py) over the reference, numba CPU and CuPy GPU backends."""
import os

from implicit_nn.engine.base import Engine, Gradient, OptimizerState, Solve, Solves, Steps, StepStats
from implicit_nn.errors import InputError
from implicit_nn.solver import SOLVERS, SolverOptions

# After a parallel prediction (cpu_kernels.predict), OpenMP's threads (numba's default threading
# layer) spin for a while; on a machine whose cores are busy, that spinning takes the core the
# training steps need (measured: thread_num 2 1.35-2.2x slower per epoch than 1; passive: 1.0).
# Passive waiting unless the user chose otherwise. Set here, on import, because OpenMP reads it
# once, when numba first starts its threads (driver: numba.set_num_threads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BACKENDS = ("reference", "cpu", "gpu", "auto")


def resolve_backend(backend):
    """(the concrete backend for a request, why it was chosen), or a one-line error saying why it
    cannot run. The reason goes on the console's engine line, so a run on `auto` says which
    engine it got and why.

    Called before a run writes anything, so `--backend gpu` without a GPU leaves no files."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}, expected one of {', '.join(BACKENDS)}",
                         "--backend", None)
    if backend not in ("gpu", "auto"):
        return backend, f"requested with --backend {backend}"
    from implicit_nn.engine.gpu import gpu_available
    usable, reason = gpu_available()
    if backend == "auto":
        if usable:
            return "gpu", "--backend auto: CuPy sees a CUDA device"
        return "cpu", f"--backend auto: no usable GPU ({reason})"
    if not usable:
        raise InputError(f"backend gpu cannot run: {reason}", "--backend", None)
    return "gpu", "requested with --backend gpu"


def check_solver(solver, backend):
    """A one-line error for an unknown solver (a name or a solver.SolverOptions) or one the
    concrete backend does not have."""
    method = SolverOptions.coerce(solver).method
    if method == "anderson" and backend == "gpu":
        raise InputError("--solver anderson runs on the cpu and reference backends only (the GPU "
                         "engine has plain iteration): add --backend cpu", "--solver", None)
    if method == "blocks" and backend != "cpu":
        raise InputError(f"--solver blocks runs on the cpu backend only, not on {backend} "
                         "(add --backend cpu)",
                         "--solver", None)


def ff_levels(network, params):
    """PERT levels for ff_optimization > 0, refusing graphs the ff path cannot run (engine Q13, Q17)."""
    from implicit_nn import levels as pert

    if pert.is_cyclic(network):
        raise InputError("ff_optimization > 0 needs an acyclic graph, but the graph has a cycle "
                         "(set ff_optimization to 0)", params.graph_datas, None)
    found = pert.pert_levels(network)
    if found.dist_max == 0:
        raise InputError("ff_optimization > 0 needs at least one edge (the longest path is 0)",
                         params.graph_datas, None)
    return found


def make_engine(network, params, backend="cpu", levels=None, solver=None):
    """The engine for `backend` ("reference", "cpu", "gpu", "auto": gpu if usable, else cpu),
    solving its fixed points as `solver` (a name of SOLVERS or a solver.SolverOptions; default
    the original's; blocks: the numba engine only, anderson: numba and reference)."""
    backend, _ = resolve_backend(backend)
    solver = SolverOptions.coerce(solver)
    check_solver(solver, backend)
    if params.ff_optimization > 0 and levels is None:
        levels = ff_levels(network, params)
    if backend == "reference":
        from implicit_nn.engine.reference import ReferenceEngine
        return ReferenceEngine(network, params, levels, solver=solver)
    if backend == "cpu":
        from implicit_nn.engine.cpu import CpuEngine
        return CpuEngine(network, params, levels, solver)
    from implicit_nn.engine.gpu import GpuEngine
    return GpuEngine(network, params, levels, solver)


__all__ = ["Engine", "Gradient", "OptimizerState", "Solve", "Solves", "Steps", "StepStats", "make_engine", "resolve_backend", "ff_levels", "BACKENDS",
           "SOLVERS", "check_solver"]
