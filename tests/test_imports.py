"""Imports run one way: reading and checking inputs loads neither numba nor the driver layer."""
import subprocess
import sys

INPUTS = ("implicit_nn.params", "implicit_nn.network", "implicit_nn.data", "implicit_nn.scan")
FORBIDDEN = ("numba", "implicit_nn.engine", "implicit_nn.driver", "implicit_nn.schedule",
             "implicit_nn.console", "implicit_nn.metrics", "implicit_nn.outputs")


def test_input_modules_import_nothing_downstream():
    code = (f"import sys\nfor m in {INPUTS!r}: __import__(m)\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []
