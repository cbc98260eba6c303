"""Imports run one way: reading and checking inputs loads neither numba nor the driver layer."""
import subprocess
import sys
from pathlib import Path

INPUTS = ("implicit_nn.params", "implicit_nn.network", "implicit_nn.data", "implicit_nn.scan")
FORBIDDEN = ("numba", "implicit_nn.engine", "implicit_nn.driver", "implicit_nn.schedule",
             "implicit_nn.console", "implicit_nn.metrics", "implicit_nn.outputs")


def test_input_modules_import_nothing_downstream():
    code = (f"import sys\nfor m in {INPUTS!r}: __import__(m)\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []


def test_check_loads_no_compiler(tmp_path):
    """`implicit-nn check` reads and checks inputs only: no numba (0.3 s or more of start-up),
    on the bundled (cyclic) example and for the PERT levels of an acyclic graph (ff path)."""
    tests = Path(__file__).resolve().parent
    example = tests.parent / "inputs" / "simulparams.dat"
    (tmp_path / "example.dat").write_text(
        example.read_text().replace("examples/", f"{tests.parent}/examples/"))
    code = f"""import sys
sys.path.insert(0, {str(tests)!r})
import numpy as np
from implicit_nn.cli import main
from implicit_nn.engine import ff_levels
from implicit_nn.network import read_network
from netgen import generate, params_for, write_files
spec = generate(np.random.default_rng(3), neurons=10, io=2, cyclic=False)
write_files(spec, {str(tmp_path)!r})
params = params_for({str(tmp_path)!r}, spec)
print('depth', ff_levels(read_network(params), params).dist_max)
assert main(['check', {str(tmp_path / 'example.dat')!r}]) == 0
print('numba' in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Graph:              cyclic" in done.stdout and "depth " in done.stdout
    assert done.stdout.split()[-1] == "False"
