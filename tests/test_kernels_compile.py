"""kernels/*.cu compile cleanly without a GPU, and gpu.py's kernel names and host helpers are right.

Compilation uses `nvcc -ptx` with gpu.py's NVRTC options (--fmad=false) and NVRTC's defaults
otherwise (IEEE division and square root, denormals kept: no fast math, engine.md §13.1); every
warning is an error. Skipped with the reason when no nvcc is on PATH. The index arrays the kernels
get are the EnginePlan's (tests/test_plan.py).
"""
import re
import shutil
import subprocess

import pytest

from implicit_nn.engine import gpu

FAST_MATH_PTX = ("div.approx.f32", "div.full.f32", "sqrt.approx.f32", "div.approx.ftz", "sqrt.approx.ftz",
                 "div.full.ftz", "add.ftz", "mul.ftz", "fma.rn.ftz")
FAST_MATH_CALLS = ("__expf", "__logf", "__powf", "__sinf", "__cosf", "__tanf", "__fdividef", "__frcp",
                   "__fsqrt", "__saturatef")

KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')


def sources():
    return gpu.kernel_sources()


@pytest.fixture(scope="module")
def ptx(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH: CUDA kernels not compile-checked")
    out = {}
    for src in sources():
        target = tmp_path_factory.mktemp("ptx") / (src.stem + ".ptx")
        cmd = [nvcc, "-ptx", "-arch=compute_75", *gpu.NVRTC_OPTIONS, "-ftz=false",
               "-prec-div=true", "-prec-sqrt=true", "-Werror", "all-warnings", str(src), "-o", str(target)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 0, f"{src.name} does not compile:\n{run.stderr}"
        assert "warning" not in (run.stdout + run.stderr).lower(), run.stdout + run.stderr
        out[src.name] = target.read_text()
    return out


def test_every_source_compiles_to_ptx_without_fast_math(ptx):
    for name, text in ptx.items():
        for op in FAST_MATH_PTX:
            assert op not in text, f"{name}: {op} in PTX (fast math?)"


def test_no_operation_is_left_for_the_compiler_to_fuse(ptx):
    """--fmad=false: every float multiply / add / subtract is a rounded .rn instruction that ptxas
    may not contract, and the fmas are the ones engine.cu writes (fmaf / fma)."""
    for name, text in ptx.items():
        loose = re.findall(r"\b(?:mul|add|sub)\.f(?:32|64)\b", text)
        assert not loose, f"{name}: {len(loose)} contractible operations ({loose[0]})"
        assert "fma.rn.f32" in text


def test_sources_use_no_fast_math_intrinsics():
    for src in sources():
        text = src.read_text()
        for call in FAST_MATH_CALLS:
            assert call + "(" not in text, f"{src.name} calls {call}"


def test_every_loaded_kernel_is_defined_once_and_exported(ptx):
    defined = [name for src in sources() for name in KERNEL.findall(src.read_text())]
    assert sorted(defined) == sorted(set(defined)), "kernel defined twice"
    assert set(gpu.KERNEL_NAMES) <= set(defined), set(gpu.KERNEL_NAMES) - set(defined)
    assert set(defined) <= set(gpu.KERNEL_NAMES), f"kernels never loaded: {set(defined) - set(gpu.KERNEL_NAMES)}"
    entries = {m for text in ptx.values() for m in re.findall(r"\.entry\s+(\w+)\(", text)}
    assert set(gpu.KERNEL_NAMES) <= entries     # extern "C": unmangled entry names


def test_kernels_dir_is_beside_the_package():
    assert gpu.kernels_dir().is_dir()
    assert any(p.name == "engine.cu" for p in gpu.kernel_sources())


def test_gpu_available_gives_a_reason():
    ok, why = gpu.gpu_available()
    assert isinstance(ok, bool) and isinstance(why, str) and why


def test_prediction_passes_hold_whole_minibatches():
    rows = gpu.predict_rows_per_pass(16, 1000, 300)
    assert rows % 16 == 0 and rows >= 16
    assert gpu.predict_rows_per_pass(7, 10 ** 9, 10 ** 9) == 7
