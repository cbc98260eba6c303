"""EnginePlan (engine/plan.py) against the definitions of engine.md §1, §6, §14 and the packing
the numba kernels unpack (engine/packing.py), on random networks from netgen."""
from types import SimpleNamespace

import numba
import numpy as np
import pytest

import netgen
from implicit_nn.engine.packing import KernelPlan, KernelSettings, pack_plan, pack_settings, \
    unpack_plan, unpack_settings
from implicit_nn.engine.plan import EnginePlan, Settings


def plans(tmp_path):
    for cyclic in (True, False):
        for neurons in (6, 11, 30):
            folder = tmp_path / f"{cyclic}{neurons}"
            overrides = dict(ff_optimization=int(not cyclic), tol_fixit=np.float32(3e-5),
                             train_lossfunction_type="MAE", clipping=1)
            net, params, spec = netgen.random_network(folder, seed=neurons, neurons=neurons, io=2,
                                                      cyclic=cyclic, max_inputs=3, params_overrides=overrides,
                                                      shared_weight_groups=2)
            levels = None if cyclic else netgen.levels_of(spec)
            yield net, params, levels, EnginePlan.build(net, params, levels)


def test_data_columns_feed_the_first_slot_of_each_input_neuron(tmp_path):
    for net, _, _, plan in plans(tmp_path):
        x = np.arange(3 * net.input_num, dtype=np.float32).reshape(3, net.input_num) + 1
        a = np.where(plan.data_column >= 0, x[:, np.maximum(plan.data_column, 0)], 0)
        expected = np.zeros((3, net.all_input_num), np.float32)
        expected[:, net.first_ind_bias[:net.input_num]] = x       # copy_input_gpu (engine.md §1.2)
        np.testing.assert_array_equal(a, expected)


def test_launch_limits_follow_the_original_grid():
    """§14: 16·⌈A/16⌉ neurons reached by the 2-D grid, 256·⌈E/256⌉ weight-gradient sources."""
    def limits(neurons, slots, edges):
        net = SimpleNamespace(neuron_num=neurons, input_num=1, output_num=1, all_input_num=slots,
                              all_neighbour_num=edges, **{name: np.zeros(n, np.int64) for name, n in (
                                  ("bias_number", neurons), ("first_ind_bias", neurons),
                                  ("neighbour_number", neurons), ("first_ind_neighbour", neurons),
                                  ("activation_type", slots), ("bias_logic", slots),
                                  ("parent_number", slots), ("first_ind_parent", slots),
                                  ("slot_owner", slots), ("edge_source", edges), ("edge_target", edges),
                                  ("graph_logic", edges), ("graph_p", edges), ("parent_edge", edges))},
                              shared_weight_groups=(), shared_bias_groups=(), edge_line=None)
        params = SimpleNamespace(**netgen.ENGINE_DEFAULTS)
        plan = EnginePlan.build(net, params)
        return plan.neuron_limit, plan.source_limit
    assert limits(40, 17, 300) == (32, 40)
    assert limits(600, 700, 10) == (600, 256)


def test_output_slots_are_the_slots_of_the_last_neurons(tmp_path):
    for net, _, _, plan in plans(tmp_path):
        first = net.neuron_num - net.output_num
        expected = [(k, net.slot_owner[k] - first) for k in range(net.all_input_num)
                    if net.slot_owner[k] >= first]
        assert list(zip(plan.output_slots.tolist(), plan.slot_output.tolist())) == expected


def test_groups_flattened_in_file_order(tmp_path):
    for net, _, _, plan in plans(tmp_path):
        members, starts = plan.weight_group_members, plan.weight_group_starts
        groups = [members[starts[g]:starts[g + 1]].tolist() for g in range(starts.size - 1)]
        assert groups == [g.tolist() for g in net.shared_weight_groups]
        assert plan.weight_groups_disjoint


def test_levels_and_dense_runs(tmp_path):
    for net, _, levels, plan in plans(tmp_path):
        if levels is None:
            assert plan.level_path == 0 and plan.depth == 0 and not plan.dist.any()
        else:
            assert plan.depth == levels.dist_max and np.array_equal(plan.dist, levels.dist)
            assert np.all(np.diff(plan.dist[plan.level_order]) >= 0)
        for i in range(net.neuron_num):
            first, count = net.first_ind_neighbour[i], net.neighbour_number[i]
            targets = net.edge_target[first:first + count]
            assert plan.dense_run[i] == (count > 0 and np.array_equal(targets, targets[0] + np.arange(count)))


def shared_runs_by_definition(members, first, count):
    """run[r]: rows r, r+1, … whose lists members[first:first+count] equal row r's."""
    lists = [members[f:f + c].tolist() for f, c in zip(first, count)]
    return [next((n for n in range(1, len(lists) - r) if lists[r + n] != lists[r]), len(lists) - r)
            for r in range(len(lists))]


def test_parent_and_child_runs(tmp_path):
    """The rows the numba kernels sum as one tile: slots with the same parents in the same order,
    neurons whose out-edges hit the same slots in the same order."""
    from test_stages import paper_case
    cases = [(net, plan) for net, _, _, plan in plans(tmp_path)]
    for family in ("v0", "v1"):
        net, prm, levels, _, _ = paper_case(tmp_path / family, family)
        cases.append((net, EnginePlan.build(net, prm, levels)))
    for net, plan in cases:
        assert plan.parent_run.tolist() == shared_runs_by_definition(
            net.graph_p, net.first_ind_parent, net.parent_number)
        assert plan.child_run.tolist() == shared_runs_by_definition(
            net.edge_target, net.first_ind_neighbour, net.neighbour_number)
    first_hidden = net.first_ind_bias[net.input_num]     # v1 [5, 29, …]: a layer of 29 slots
    assert plan.parent_run[first_hidden] == 29 and plan.child_run[0] == net.input_num


@numba.njit
def _unpacked(packed_plan, packed_settings):
    return unpack_plan(packed_plan), unpack_settings(packed_settings)


def test_packing_round_trips_every_field_in_order(tmp_path):
    """The kernels' view of the plan and the settings is the plan's, field by field."""
    for _, params, _, plan in plans(tmp_path):
        unpacked, settings = _unpacked(pack_plan(plan), pack_settings(plan.settings))
        assert isinstance(unpacked, KernelPlan)
        for name in KernelPlan._fields:
            np.testing.assert_array_equal(getattr(unpacked, name), getattr(plan, name), err_msg=name)
        assert isinstance(settings, KernelSettings) and settings == tuple(vars(plan.settings).values())
        assert plan.settings == Settings.of(params) and plan.settings.loss == 1
        assert type(plan.settings.tol_fixit) is np.float32 and plan.settings.tol_fixit == np.float32(3e-5)


def test_kernels_refuse_a_plan_packed_for_another_layout(tmp_path):
    """numba's cache only watches cpu_kernels.py: kernels compiled for another field list must
    stop with a clear error instead of reading the wrong fields."""
    from implicit_nn.engine.cpu import CpuEngine
    net, params, levels, _ = next(plans(tmp_path))
    engine = CpuEngine(net, params, levels)
    x = np.zeros((3, net.input_num), np.float32)
    engine.predict(x, 3)
    engine._packed_plan[0] += 1
    with pytest.raises(ValueError, match="another EnginePlan layout"):
        engine.predict(x, 3)
