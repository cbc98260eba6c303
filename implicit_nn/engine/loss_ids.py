"""Loss types by id (engine.md §6): the parameter file's names (params.LOSS_NAMES) in id order.

Apart from losses.py so that building an EnginePlan, and so `implicit-nn check`, loads no numba.
"""
from implicit_nn.errors import InputError
from implicit_nn.params import LOSS_NAMES

MSE, MAE, MULTICLASS_CE, MULTILABEL_CE, BCE_MULTILABEL = range(5)
LOSS_IDS = dict(zip(LOSS_NAMES, range(5)))       # params.LOSS_NAMES is in this id order

# The seed is the derivative of OBJECTIVE_SCALE·contribution: ½(y−t)² for MSE (engine Q5), 1 otherwise.
OBJECTIVE_SCALE = {MSE: 0.5, MAE: 1.0, MULTICLASS_CE: 1.0, MULTILABEL_CE: 1.0, BCE_MULTILABEL: 1.0}


def check_loss_name(name, source):
    """One-line error naming the parameter file `source` for a loss type no engine knows."""
    if name not in LOSS_IDS:
        raise InputError(f"Wrong loss function: '{name}' (expected one of "
                         f"{', '.join(LOSS_IDS)})", source)


def loss_id(name):
    """Numeric id of a loss name (the driver and gradcheck have already checked the name)."""
    return LOSS_IDS[name]
