"""The numba engine's faithful sweeps recompute only what can change (issue 13, item 2).

That the results are the original's whole-network sweeps bit for bit is test_stages.py's job (the
paper's v1/v2 layers and random cyclic graphs against the reference engine) and the golden
tests'. Here: that the skipping happens at all. A value written into a row the sweep must not
touch survives the next sweep; one written into a row it must recompute is overwritten.
"""
from dataclasses import astuple

import numpy as np

from implicit_nn.engine import cpu_kernels, make_engine
from implicit_nn.engine.packing import KernelPlan, KernelSettings
from test_stages import data, paper_case

MARK = np.float32(12345.0)


def reachable(plan, start):
    """Neurons reachable from `start` along out-edges (start included)."""
    seen, todo = set(start), list(start)
    while todo:
        for j in successors(plan, todo.pop()) - seen:
            seen.add(j)
            todo.append(j)
    return seen


def solved(tmp_path, sweeps):
    """The v1 paper layers, one minibatch of 16 solved forward and backward with `sweeps`
    sweeps each: (plan, work, x, w, b)."""
    net, prm, levels, w, b = paper_case(tmp_path, "v1", maxiter_fix=sweeps, tol_fixit=np.float32(0))
    engine = make_engine(net, prm, "cpu", levels=levels)
    engine.set_parameters(w, b)
    x = data(16, net.input_num, seed=5)
    engine._reserve(16)
    plan = KernelPlan(*(getattr(engine.plan, name) for name in KernelPlan._fields))
    settings = KernelSettings(*astuple(engine.plan.settings))
    work = engine._work
    work.w_parent[:] = w[plan.parent_edge]
    *_, a = cpu_kernels._forward(plan, settings, work, x, w, b)
    cpu_kernels._local_derivatives(plan, a, work.h, work.f, 16)
    cpu_kernels._seed(plan, settings, work, x, 16)
    cpu_kernels._backward(plan, settings, work, x, w, b, 16)
    return plan, work, x, w, b


def successors(plan, i):
    return {int(plan.slot_owner[plan.edge_target[e]])
            for e in range(plan.first_ind_neighbour[i], plan.first_ind_neighbour[i] + plan.neighbour_number[i])}


def parts(plan):
    """(upstream of the cycles, on a cycle, downstream of them) as sets of neurons."""
    cyclic = {i for i in range(plan.neuron_num) if i in reachable(plan, successors(plan, i))}
    downstream = reachable(plan, cyclic)
    return set(range(plan.neuron_num)) - downstream, cyclic, downstream - cyclic


def slots_of(plan, neurons):
    return [k for i in sorted(neurons)
            for k in range(plan.first_ind_bias[i], plan.first_ind_bias[i] + plan.bias_number[i])]


def test_forward_sweep_skips_the_settled_encoder(tmp_path):
    plan, work, x, w, b = solved(tmp_path, sweeps=12)
    encoder, latent, decoder = parts(plan)
    assert encoder and latent and decoder
    downstream = latent | decoder
    work.a[slots_of(plan, encoder), :16] = MARK
    work.a[slots_of(plan, downstream), :16] = MARK
    cpu_kernels._forward_sweep(plan, work, x, b, 16)
    assert (work.a[slots_of(plan, encoder), :16] == MARK).all()         # settled: not touched
    assert not (work.a[slots_of(plan, downstream), :16] == MARK).any()  # still moving: recomputed


def test_adjoint_sweep_skips_the_settled_decoder(tmp_path):
    sweeps = 12
    plan, work, x, w, b = solved(tmp_path, sweeps)
    encoder, latent, decoder = parts(plan)
    assert set(range(plan.neuron_num - plan.output_num, plan.neuron_num)) <= decoder
    rows = sorted(decoder)
    work.sums[rows, :16] = MARK
    cpu_kernels._adjoint_sweep(plan, work, w, 16, sweeps + 1)
    assert (work.sums[rows, :16] == MARK).all()        # their children's increments stay 0
    upstream = sorted(set(range(plan.neuron_num)) - decoder)
    work.sums[upstream, :16] = MARK
    cpu_kernels._adjoint_sweep(plan, work, w, 16, sweeps + 2)
    assert not (work.sums[upstream, :16] == MARK).all()
