"""Fixed-point solves that stopped at maxiter_fix without reaching tol_fixit, made visible.

The original never says when its iteration did not converge: IF / IB in the results log are mean
iteration counts, and a run whose solves all stop at maxiter_fix looks like any other. The driver
counts the minibatches with such a solve (forward or adjoint, from the engines' Solve records)
between two validations, and the prediction chunks of the final evaluation; each count that is
not zero becomes one console line. The log files stay byte-compatible.
"""

import numpy as np

from .cformat import cfmt


class Unconverged:
    """Solves since the last report: how many units (minibatches, chunks), how many of them had
    a solve that did not converge, and the last such solve's residual."""

    def __init__(self, params, solver=None):
        self.maxiter, self.tol = int(params.maxiter_fix), np.float32(params.tol_fixit)
        self.adjoint = ""       # the adjoint's own stop rule, when --tol/--maxiter-backward set it
        if solver is not None and (solver.tol_backward, solver.maxiter_backward) != (None, None):
            self.adjoint = (f" (the adjoint's: {solver.maxiter_backward_of(params)} sweeps, "
                            f"{cfmt('%.2E', np.float32(solver.tol_backward_of(params)))})")
        self.units = self.failed = 0
        self.residual = np.float32(np.nan)

    def add(self, *solves):
        """Units whose fixed-point solves are `solves`: Solve records of one unit, or Solves
        of one entry per unit (e.g. the forward and the adjoint solves of some minibatches)."""
        converged = [np.atleast_1d(s.converged) for s in solves]
        failed = ~np.logical_and.reduce(converged)
        self.units += failed.size
        if failed.any():
            self.failed += int(np.count_nonzero(failed))
            last = np.flatnonzero(failed)[-1]
            kind = max(j for j, ok in enumerate(converged) if not ok[last])
            self.residual = np.float32(np.atleast_1d(solves[kind].residual)[last])

    def report(self, what):
        """The warning line, or None when every solve converged; `what` names the units with
        `{units}` for their count ('the last {units} minibatches'). The counts start again."""
        line = None
        if self.failed:
            line = (f"Warning: {self.failed} of {what.format(units=self.units)} "
                    f"({100.0 * self.failed / self.units:.0f}%) had a fixed-point solve that "
                    f"stopped at maxiter_fix {self.maxiter} without reaching tol_fixit "
                    f"{cfmt('%.2E', self.tol)}{self.adjoint} (last residual "
                    f"{cfmt('%.2E', self.residual)})")
        self.units = self.failed = 0
        self.residual = np.float32(np.nan)
        return line
