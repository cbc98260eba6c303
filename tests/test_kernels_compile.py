"""kernels/*.cu compile cleanly without a GPU, and gpu.py's kernel names and index helpers are right.

Compilation uses `nvcc -ptx` with gpu.py's NVRTC options (--fmad=false) and NVRTC's defaults
otherwise (IEEE division and square root, denormals kept: no fast math, engine.md §13.1); every
warning is an error. Skipped with the reason when no nvcc is on PATH. The index helpers are plain numpy and are
checked against the definitions in engine.md §1, §6, §14 on random networks from netgen.
"""
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from implicit_nn.engine import gpu
from netgen import derived_arrays, generate

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


# -- index helpers ---------------------------------------------------------------------------------

def networks():
    rng = np.random.default_rng(5)
    for cyclic in (True, False):
        for neurons in (6, 11, 30):
            yield SimpleNamespace(**derived_arrays(generate(rng, neurons=neurons, io=2, cyclic=cyclic, max_inputs=3)))


def test_data_columns_feed_the_first_slot_of_each_input_neuron():
    for net in networks():
        columns = gpu.data_columns(net, gpu.launch_limits(net)[0])
        x = np.arange(3 * net.input_num, dtype=np.float32).reshape(3, net.input_num) + 1
        a = np.where(columns >= 0, x[:, np.maximum(columns, 0)], 0).astype(np.float32)
        expected = np.zeros((3, net.all_input_num), np.float32)
        expected[:, net.first_ind_bias[:net.input_num]] = x       # copy_input_gpu (engine.md §1.2)
        np.testing.assert_array_equal(a, expected)


def test_launch_limits_follow_the_original_grid():
    net = SimpleNamespace(neuron_num=40, all_input_num=17, all_neighbour_num=300)
    assert gpu.launch_limits(net) == (32, 40)          # 16·⌈17/16⌉ = 32 neurons reached
    net = SimpleNamespace(neuron_num=600, all_input_num=700, all_neighbour_num=10)
    assert gpu.launch_limits(net) == (600, 256)        # weight-gradient sources below 256·⌈10/256⌉


def test_output_slots_are_the_slots_of_the_last_neurons():
    for net in networks():
        slots, owner = gpu.output_slots(net)
        first = net.neuron_num - net.output_num
        expected = [(k, net.slot_owner[k] - first) for k in range(net.all_input_num) if net.slot_owner[k] >= first]
        assert list(zip(slots.tolist(), owner.tolist())) == expected


def test_group_flattening_and_disjointness():
    members, starts = gpu.flatten_groups((np.array([3, 1]), np.array([4, 0, 2])))
    assert members.tolist() == [3, 1, 4, 0, 2] and starts.tolist() == [0, 2, 5]
    assert gpu.groups_disjoint((np.array([3, 1]), np.array([4, 0])))
    assert not gpu.groups_disjoint((np.array([3, 1]), np.array([1, 0])))
    assert gpu.groups_disjoint(())


def test_prediction_passes_hold_whole_minibatches():
    rows = gpu.predict_rows_per_pass(16, 1000, 300)
    assert rows % 16 == 0 and rows >= 16
    assert gpu.predict_rows_per_pass(7, 10 ** 9, 10 ** 9) == 7
