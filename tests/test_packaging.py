"""The built wheel, installed non-editable in a clean virtual environment, is a working trainer.

Builds the wheel with pip, installs it (and its dependencies) into a temporary venv and, from a
folder outside the checkout so nothing is imported from it: finds the CUDA sources shipped as
package data, checks and trains the bundled example on the numba CPU engine. Marked `packaging`
(deselected by default: it installs numpy and numba and compiles the kernels, about a minute);
`.ci/run` runs it as its own step: `python -m pytest -m packaging`.
"""

import shutil
import subprocess
import sys
import venv

import pytest

import implicit_nn
from conftest import ROOT

pytestmark = pytest.mark.packaging


def _run(args, **kwargs):
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv folder, a working folder outside the checkout) with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", ROOT])
    (wheel,) = (base / "dist").glob("implicit_nn-*.whl")
    env = base / "venv"
    venv.create(env, with_pip=True)
    _run([env / "bin" / "python", "-m", "pip", "install", "-q", wheel])
    work = base / "work"
    work.mkdir()
    return env, work


def test_wheel_finds_its_cuda_sources(installed):
    env, work = installed
    out = _run([env / "bin" / "python", "-c",
                "import implicit_nn, implicit_nn.engine.gpu as gpu; print(implicit_nn.__file__); "
                "print(*gpu.kernel_sources(), sep='\\n')"], cwd=work)
    package, *sources = out.splitlines()
    site = str(env.resolve())
    assert package.startswith(site), package          # not the checkout
    assert sources and all(s.startswith(site) and s.endswith(".cu") for s in sources), sources
    shipped = sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))
    assert sorted(s.rsplit("/", 1)[1] for s in sources) == shipped


def test_wheel_version(installed):
    env, work = installed
    assert _run([env / "bin" / "implicit-nn", "--version"], cwd=work) == \
        f"implicit-nn {implicit_nn.__version__}\n"


def test_wheel_checks_and_trains_the_bundled_example(installed):
    """`implicit-nn check`, then bare `implicit-nn` (as ./neural) trains 1 epoch on the CPU."""
    env, work = installed
    shutil.copytree(ROOT / "examples" / "small", work / "examples" / "small")
    (work / "inputs").mkdir()
    text = (ROOT / "inputs" / "simulparams.dat").read_text()
    epochs = next(line for line in text.splitlines() if line.startswith("maxiter_grad"))
    (work / "inputs" / "simulparams.dat").write_text(text.replace(epochs, "maxiter_grad 1"))
    (work / "outputs").mkdir()
    cli = env / "bin" / "implicit-nn"
    assert "Neurons:            30 (6 input, 6 output)" in _run([cli, "check"], cwd=work)
    _run([cli, "--quiet", "--backend", "cpu"], cwd=work)
    final = (work / "outputs" / "test_metrics_final_small_1.dat").read_text().splitlines()
    assert final[3].split("|")[1].strip() == "1"
    assert (work / "outputs" / "backup_best_autoencoder_small_1.dat").is_file()
