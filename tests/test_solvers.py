"""Solvers beyond the original's plain iteration (implicit_nn/solver.py, docs/solvers.md).

Anderson acceleration is written twice in the same arithmetic order (reference.Anderson,
cpu_kernels._anderson_mix), so the numba engine is held to the reference BIT FOR BIT, stage by
stage, through training steps and predictions. Against plain iteration it is held to the same
fixed point within the tolerance's reach, in fewer sweeps, and its adjoint gradient to central
finite differences (gradcheck). The adjoint's own stop rule (--tol-backward, --maxiter-backward)
is checked on both engines. With no option given, nothing changes (the golden tests hold the
files; here the settings and the engine's name).
"""
import numpy as np
import pytest

from implicit_nn import api
from implicit_nn.cli import main
from implicit_nn.engine import make_engine
from implicit_nn.engine.plan import Settings
from implicit_nn.gradcheck import check_gradient
from implicit_nn.solver import SolverOptions
from implicit_nn.tools.make_config import make_autoencoder
from test_driver import final, setup  # noqa: F401  (the fixture)
from test_gradcheck import run_folder  # noqa: F401  (the fixture)
from test_stages import STAGES, close, cpu_stages, data, paper_case, random_case, reference_stages

ANDERSON = SolverOptions("anderson")


def engine_pair(case, solver):
    net, prm, levels, w, b = case
    pair = tuple(make_engine(net, prm, backend, levels, solver) for backend in ("reference", "cpu"))
    for engine in pair:
        engine.set_parameters(w, b)
    return pair


def same_stages(case, solver, x):
    """Every stage of one minibatch, numba against the reference, bit for bit."""
    reference, cpu = engine_pair(case, solver)
    want = reference_stages(reference, x)
    got = cpu_stages(cpu, x)
    for name in STAGES:
        close(got[name], want[name], name, True)
    return want


@pytest.mark.parametrize("seed, loss, m, beta, start", [
    (1, "MSE", 3, 1.0, 0), (2, "MAE", 5, 0.6, 0), (3, "multiclassification_crossentropy", 1, 1.0, 2),
    (4, "bce_multilabeling", 2, 0.9, 1)])
def test_anderson_numba_equals_reference_on_random_graphs(tmp_path, seed, loss, m, beta, start):
    case = random_case(tmp_path, seed, loss=loss)
    same_stages(case, SolverOptions("anderson", m, beta, start),
                data(7, case[0].input_num, loss, seed))


def test_anderson_numba_equals_reference_on_a_slow_paper_network(tmp_path):
    """v1 with large weights: tens of sweeps, the history ring wraps many times."""
    net, prm, levels, w, b = paper_case(tmp_path, "v1", maxiter_fix=300)
    case = (net, prm, levels, 2.5 * w, b)
    want = same_stages(case, SolverOptions("anderson", 3, 1.0, 0), data(21, net.input_num))
    assert want["forward"].iterations > 10 and want["backward"].iterations > 10


def test_anderson_training_steps_and_predictions_equal_reference(tmp_path):
    net, prm, levels, w, b = random_case(tmp_path, 7, params={"optimizer": 2})
    reference, cpu = engine_pair((net, prm, levels, w, b), SolverOptions("anderson", 4, 0.8))
    for step in range(3):
        x = data(6, net.input_num, seed=10 + step)
        want, got = reference.train_step(x, 1e-3, 0.9), cpu.train_step(x, 1e-3, 0.9)
        assert (got.loss, got.maw, got.mab, got.forward, got.backward) == \
            (want.loss, want.maw, want.mab, want.forward, want.backward)
    for got, want in zip(cpu.get_parameters(), reference.get_parameters()):
        np.testing.assert_array_equal(got, want)
    x = data(23, net.input_num, seed=30)
    np.testing.assert_array_equal(cpu.predict(x, 5), reference.predict(x, 5))
    assert [cpu.predict_solves[c] for c in range(5)] == \
        [reference.predict_solves[c] for c in range(5)]


def test_anderson_reaches_the_plain_fixed_point_in_fewer_sweeps(tmp_path):
    """Same A, δ and gradient as plain iteration within what tol_fixit leaves open, on a
    network whose plain iteration contracts slowly."""
    net, prm, levels, w, b = paper_case(tmp_path, "v1", tol_fixit=np.float32(1e-6),
                                        maxiter_fix=2000)
    case = (net, prm, levels, 2.0 * w, b)      # plain: about 220 sweeps each way
    x = data(16, net.input_num)
    plain = cpu_stages(engine_pair(case, None)[1], x)
    fast = cpu_stages(engine_pair(case, ANDERSON)[1], x)
    assert plain["forward"].converged and fast["forward"].converged
    assert plain["backward"].converged and fast["backward"].converged
    assert fast["forward"].iterations < plain["forward"].iterations / 3
    assert fast["backward"].iterations < plain["backward"].iterations / 3
    for name in ("A", "D", "G_w", "G_b"):
        scale = float(np.abs(plain[name]).max())
        np.testing.assert_allclose(fast[name], plain[name], rtol=0, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("argv", [["--solver", "anderson"],
                                  ["--solver", "anderson", "--anderson-m", "2",
                                   "--anderson-beta", "0.7"]])
def test_anderson_gradient_passes_gradcheck(run_folder, capsys, argv):  # noqa: F811
    assert main(["gradcheck", "simulparams.dat", "--samples", "5", *argv]) == 0
    out = capsys.readouterr().out
    assert "solver Anderson" in out and out.rstrip().endswith("OK (tolerance 0.001)")


def test_anderson_gradient_of_the_numba_engine_passes_gradcheck(tmp_path):
    net, prm, levels, w, b = random_case(tmp_path, 5, params={"clipping": 0})
    worst = check_gradient(net, prm, w, b, data(5, net.input_num, seed=5), ANDERSON, "cpu")
    assert max(item.error for item in worst) < 1e-3


def test_adjoint_stop_rule_of_its_own(tmp_path):
    """--maxiter-backward / --tol-backward stop the adjoint only, on both engines alike."""
    case = random_case(tmp_path, 8)
    x = data(9, case[0].input_num, seed=8)
    plain = same_stages(case, None, x)
    capped = same_stages(case, SolverOptions(maxiter_backward=2), x)
    assert capped["forward"] == plain["forward"] and plain["backward"].iterations > 2
    assert capped["backward"].iterations == 2 and not capped["backward"].converged
    loose = same_stages(case, SolverOptions("anderson", tol_backward=1e10), x)
    assert loose["backward"].iterations == 1 and loose["backward"].converged


def test_no_option_is_the_original_solver(tmp_path):
    net, prm, levels, w, b = random_case(tmp_path, 9)
    settings = Settings.of(prm)
    assert (settings.tol_backward, settings.maxiter_backward, settings.solver) == \
        (np.float32(prm.tol_fixit), prm.maxiter_fix, 0)
    assert SolverOptions.of() == SolverOptions() and SolverOptions().is_original
    assert make_engine(net, prm, "cpu").name == "cpu (numba)"
    assert make_engine(net, prm, "cpu", solver=SolverOptions("anderson", 3)).name == \
        "cpu (numba); solver Anderson m=3 beta=1 start=8"


@pytest.fixture
def implicit_setup(setup, tmp_path):  # noqa: F811
    """test_driver's training folder with the implicit v1 autoencoder."""
    tag, _, neurons, _ = make_autoencoder(tmp_path / "cfg1", "v1", 3, 8, 4, 4, 9)
    files = {f"{kind}_datas": f"cfg1/{kind}_autoencoder_{tag}.dat"
             for kind in ("graph", "logic", "fixwb", "shared_w", "shared_b")}
    return lambda **changes: setup(neuron_num=neurons, ff_optimization=0, **files, **changes)


def test_cli_trains_with_anderson_on_both_engines(implicit_setup, capsys):
    root = implicit_setup(maxiter_grad=1)
    options = ["--solver", "anderson", "--anderson-m", "4", "--stats", "out/stats.csv"]
    assert main(["train", "--backend", "cpu", *options]) == 0
    assert "Engine: cpu (numba); solver Anderson m=4 beta=1 start=8; requested with --backend cpu" \
        in capsys.readouterr().out
    cpu = final(root / "out/test_metrics_final.dat")
    (root / "out/test_metrics_final.dat").unlink()
    assert main(["train", "--quiet", "--backend", "reference", *options]) == 0
    assert final(root / "out/test_metrics_final.dat")[:-1] == cpu[:-1]      # ET aside


def test_api_takes_the_solver_and_resume_refuses_another(implicit_setup, capsys):
    implicit_setup(maxiter_grad=1)
    params = api.read_params("inputs/simulparams.dat")
    result = api.train(params, backend="cpu", solver="anderson", anderson_beta=0.5,
                       maxiter_backward=7, checkpoint_every=2)
    assert result.engine == \
        "cpu (numba); solver Anderson m=5 beta=0.5 start=8, maxiter_backward 7"
    assert main(["train", "--quiet", "--backend", "cpu", "--resume", "out/results.dat.ckpt"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "same --backend and solver options" in err[0]


def test_the_console_warning_names_the_adjoints_own_stop_rule(implicit_setup, capsys):
    implicit_setup(maxiter_grad=1)
    assert main(["train", "--backend", "cpu", "--maxiter-backward", "1"]) == 0
    out = capsys.readouterr().out
    assert "without reaching tol_fixit 1.00E-05 (the adjoint's: 1 sweeps, 1.00E-05)" in out


@pytest.mark.parametrize("argv, words", [
    (["--solver", "anderson", "--anderson-m", "0"], "--anderson-m: must be an integer from 1"),
    (["--solver", "anderson", "--anderson-beta", "1.5"], "--anderson-beta: must be a number in"),
    (["--anderson-m", "3"], "--anderson-m: needs --solver anderson"),
    (["--solver", "anderson", "--anderson-start", "-2"], "--anderson-start: must be a non-negative"),
    (["--maxiter-backward", "-1"], "--maxiter-backward: must be a non-negative integer"),
    (["--tol-backward", "nan"], "--tol-backward: must be a non-negative number"),
])
def test_bad_solver_options_are_one_line_and_write_nothing(implicit_setup, capsys, argv, words):
    root = implicit_setup(maxiter_grad=1)
    assert main(["train", "--quiet", "--backend", "cpu", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"implicit-nn: error: {words}")
    assert list((root / "out").iterdir()) == []


def test_anderson_is_refused_on_the_gpu_before_anything_is_written(implicit_setup, capsys,
                                                                   monkeypatch):
    import implicit_nn.engine.gpu as gpu
    monkeypatch.setattr(gpu, "gpu_available", lambda: (True, "Some GPU"))
    root = implicit_setup(maxiter_grad=1)
    assert main(["train", "--quiet", "--backend", "gpu", "--solver", "anderson"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--solver anderson runs on the cpu and reference backends" in err[0]
    assert list((root / "out").iterdir()) == []
