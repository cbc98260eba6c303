"""What a training run hands back to Python: each validation, the best model, the final metrics
and the files written. Plain frozen records of Python floats (each the exact value of the float32
the logs print), so a notebook can tabulate them without this package's number formats."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ValidationRecord:
    """One validation as the results log and the test-metrics log record it (driver.md §7.2-7.3).

    A validation that triggers early stopping is logged nowhere and is not in the history; the
    one that finds the training loss exploding is in the results log only (test_f1/test_mcc are
    still given here)."""
    epoch: int                  # ITER, 1-based
    minibatch: int              # MB, 1-based within the epoch
    loss: float                 # LE: mean per-element training loss of the epoch so far
    metric: float               # VM: the validation metric of this validation
    best_metric: float          # BVM: the best validation metric so far
    iter_forward: float         # IF: mean forward fixed-point iterations of the epoch so far
    iter_backward: float        # IB: mean adjoint iterations of the epoch so far
    max_weight_gradient: float  # MAW of the last minibatch
    max_bias_gradient: float    # MAB of the last minibatch
    learning_rate: float        # LR of the last minibatch
    elapsed: float              # ET, seconds
    test_f1: float              # TF1: test-set F1 at this validation's threshold
    test_mcc: float             # TMCC


@dataclass(frozen=True)
class FinalMetrics:
    """The final-metrics line (driver.md §6, §7.4): the best model on validation and test data."""
    epochs: int                 # ITER: epochs run (0 for a load-only run)
    valid_auc: float            # VAUC
    valid_mcc: float            # VMCC at the best threshold
    valid_f1: float             # VF1
    test_f1: float              # CTF1
    test_mcc: float             # CTMCC
    test_accuracy: float        # CTACC
    test_precision: float       # CTP
    test_recall: float          # CTR
    elapsed: float              # ET, seconds


@dataclass(frozen=True)
class OutputPaths:
    """The files a run writes, as named by the parameter file."""
    results_log: str
    test_log: str
    final_log: str
    predictions_valid: str
    predictions_test: str
    backup: str

    @classmethod
    def of(cls, params: Any) -> "OutputPaths":
        return cls(params.output_name, params.test_log, params.test_log_final,
                   params.predict_name_valid, params.predict_name_test, params.save_best_model)


@dataclass(frozen=True)
class TrainResult:
    """Everything `implicit_nn.train` learned about a run.

    `stopped` is "completed", "early stopping" or "exploding" (the training loss became NaN or
    infinite). `threshold`, `mean` and `std` are those of the backup written at the end (the best
    validation's, or the loaded backup's in load mode)."""
    history: tuple[ValidationRecord, ...]
    best_metric: float
    threshold: float
    mean: float
    std: float
    final: FinalMetrics
    stopped: str
    paths: OutputPaths
    engine: str
    params: Any = dataclasses.field(repr=False)

    def columns(self) -> dict[str, list]:
        """The history as columns: {"epoch": [...], "loss": [...], ...} (e.g. for pandas)."""
        names = [f.name for f in dataclasses.fields(ValidationRecord)]
        return {name: [getattr(row, name) for row in self.history] for name in names}

    def load_model(self, backend: str = "auto") -> "Any":
        """The backup this run wrote, ready to predict (implicit_nn.load_network)."""
        from implicit_nn.api import load_network
        return load_network(self.params, self.paths.backup, backend=backend)
