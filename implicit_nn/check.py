"""`implicit-nn check [PARAMS]`: read and validate every input a run would read, print a summary.

Nothing is trained or written; the first problem found is the usual one-line InputError.
"""

import numpy as np

from . import data
from .engine import ff_levels
from .errors import InputError, shown
from .levels import is_cyclic, pert_levels
from .network import read_network
from .params import read_params, validate


def summarize(params, network):
    """The summary lines of a network: counts, sharing, topology.

    Raises InputError when ff_optimization is set on a graph the feed-forward path refuses
    (engine.ff_levels: any cycle, or no edges).
    """
    net = network
    train_w = int(np.count_nonzero(net.graph_logic == 1))
    train_b = int(np.count_nonzero(net.bias_logic == 1))
    fixed_w = int(np.count_nonzero(net.graph_logic == 0))
    fixed_b = int(np.count_nonzero(net.bias_logic == 0))
    lines = [
        f"Neurons:            {net.neuron_num} ({net.input_num} input, {net.output_num} output)",
        f"Inputs (slots):     {net.all_input_num}",
        f"Edges:              {net.all_neighbour_num}",
        f"Trainable:          {train_w + train_b} ({train_w} weights, {train_b} biases)",
        f"Fixed:              {fixed_w} weights, {fixed_b} biases",
    ]
    frozen = net.all_neighbour_num + net.all_input_num - train_w - train_b - fixed_w - fixed_b
    if frozen:     # logic values other than 0/1: never fixed, never updated (inputs Q8)
        lines.append(f"Frozen (logic not 0/1): {frozen}")
    lines.append(f"Shared groups:      "
                 f"{_groups(net.shared_weight_groups, params.shared_weights_num, 'weight')}, "
                 f"{_groups(net.shared_bias_groups, params.shared_biases_num, 'bias')}")
    if params.ff_optimization:        # refuses what training refuses: cycles, no edges
        depth = ff_levels(net, params).dist_max
        lines.append(f"Graph:              acyclic, PERT depth {depth} (feed-forward evaluation)")
    elif is_cyclic(net):
        lines.append("Graph:              cyclic (implicit; fixed-point iteration)")
    else:
        depth = pert_levels(net).dist_max
        lines.append(f"Graph:              acyclic, PERT depth {depth} (fixed-point iteration)")
        if params.maxiter_fix < depth:
            lines.append(f"Warning:            maxiter_fix {params.maxiter_fix} is below the PERT "
                         f"depth {depth}: every forward solve stops before the inputs reach the "
                         "outputs (raise maxiter_fix, or set ff_optimization 1)")
    return lines


def _groups(groups, declared, what):
    """'<n> <what>', and the declared count where the file holds fewer groups (inputs Q12)."""
    text = f"{len(groups)} {what}"
    if declared > len(groups):
        entry = "shared_weights_num" if what == "weight" else "shared_biases_num"
        text += f" (of {entry} {declared}: the file holds {len(groups)}, the others are empty)"
    return text


def run_check(args):
    path = args.params
    params = read_params(path)
    validate(params, path)
    network = read_network(params)
    lines = [f"Parameters:         {shown(path, None)}"] + summarize(params, network)
    files = (("Training data", data.read_train, params.input_name, params.learn_num),
             ("Validation data", data.read_labeled, params.input_name_valid, params.valid_num),
             ("Test data", data.read_labeled, params.input_name_test, params.test_num))
    for label, reader, name, rows in files:
        result = reader(name, rows, params.input_num)
        extra = ""
        if isinstance(result, tuple):
            extra = f", {int(np.count_nonzero(result[1] == 1))} positive"
        lines.append(f"{label + ':':<20}{rows} rows{extra} ({shown(name, None)})")
    if args.contraction:
        from .contraction import run_contraction
        if args.samples < 1:
            raise InputError(f"must be at least 1, got {args.samples}", "--samples")
        lines += run_contraction(params, network, args.load, args.samples)
    print("\n".join(lines))
    return 0
