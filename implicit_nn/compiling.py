"""Saying on the console when numba compiles, so that a first run is not half a minute of silence.

numba reports each compilation it starts (a cache miss: a first run after an install or an
update of the kernels' source) as a "numba:compile" event; loading from its cache is no event.
"""
import time
from contextlib import contextmanager

LABEL = "Compiling the CPU kernels"


@contextmanager
def announced(console):
    """Within the block, the first compilation prints a line saying so; at its end, if anything
    was compiled, the console's done line with the seconds the block took."""
    from numba.core import event

    class Listener(event.Listener):
        compiled = False

        def on_start(self, _event):
            if not self.compiled:
                self.compiled = True
                console.compiling(LABEL)

        def on_end(self, _event):
            pass

    listener = Listener()
    t0 = time.perf_counter()
    with event.install_listener("numba:compile", listener):
        yield
    if listener.compiled:
        console.done(LABEL, time.perf_counter() - t0)


def compile_kernels(folder):
    """Train a tiny implicit autoencoder for one epoch in `folder` on the CPU engine: every
    kernel a training or a prediction calls gets compiled into numba's cache (their argument
    types do not depend on the network, and one compiled training kernel holds both the
    fixed-point and the level-by-level path)."""
    from pathlib import Path

    import numpy as np

    from implicit_nn import driver
    from implicit_nn.api import make_params
    from implicit_nn.tools.make_config import make_autoencoder

    folder = Path(folder)
    inputs, rows = 3, 8
    tag, _, neuron_num, _ = make_autoencoder(folder, "v1", 2, 4, 2, inputs, 9)
    x = np.random.default_rng(0).uniform(-1, 1, (rows, inputs))
    labels = np.arange(rows) % 2
    np.savetxt(folder / "train.dat", x, fmt="%.6f")
    for name in ("valid.dat", "test.dat"):
        np.savetxt(folder / name, np.column_stack([x, labels]), fmt=["%.6f"] * inputs + ["%d"])
    network = {f"{kind}_datas": str(folder / f"{kind}_autoencoder_{tag}.dat")
               for kind in ("graph", "logic", "fixwb")}
    outputs = {name: str(folder / f"{name}.dat") for name in (
        "output_name", "predict_name_valid", "predict_name_test", "test_log", "test_log_final",
        "save_best_model")}
    params = make_params(
        **network, **outputs, input_name=str(folder / "train.dat"),
        input_name_valid=str(folder / "valid.dat"), input_name_test=str(folder / "test.dat"),
        learn_num=rows, valid_num=rows, test_num=rows, mini_batch_size=4, maxiter_grad=1,
        shuffle_num=rows, range_div=10, neuron_num=neuron_num, input_num=inputs,
        output_num=inputs, thread_num=1, sfreq=1)
    driver.train(params, backend="cpu", quiet=True, source="implicit-nn compile")


def compile_bytecode():
    """Python's own cache of the package's modules (__pycache__/*.pyc): an interpreter that
    may not write bytecode (PYTHONDONTWRITEBYTECODE, as some containers set) otherwise compiles
    every module of the package again at each start, 0.07 s of every command; one that may
    writes it at the first import anyway. False where the folder is not writable (nothing
    is said: the run is then only slower)."""
    import compileall
    from pathlib import Path

    return compileall.compile_dir(Path(__file__).resolve().parent, quiet=2)


def run_compile(_args):
    """`implicit-nn compile`: what a first run would compile, now (make install runs it): the
    numba kernels and the package's bytecode."""
    import tempfile

    from implicit_nn.console import Console

    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="implicit-nn-compile-") as folder:
        with announced(Console()):
            compile_kernels(folder)
    return 0
