#!/usr/bin/env bash
# The GPU backend's check on a machine with an NVIDIA GPU, in one go (about 8 minutes at most):
#   1. environment  .venv with implicit-nn[test] and CuPy, installing only what is missing
#   2. pytest -m gpu      the GPU test suite (GPU vs numba, the published predictions of all 18
#                         models, the first training epoch against the original's log)
#   3. golden load  tests/test_golden_load.py on the GPU backend: load-mode runs of all 18 models
#                   (runs 1 and 2) against the original's predictions and final metrics
#   4. benchmark    benchmarks/bench_gpu.py: s/epoch of the (5;32;8) and (7;64;16) v0/v1 paper
#                   jobs, GPU and numba side by side
# then one summary (the whole output is also kept in gpu_check.log).
#
# Needs: this checkout with the golden data beside it (../shared/reference, or
# IMPLICIT_NN_REFERENCE=FOLDER), an NVIDIA driver for CUDA 12, Python >= 3.10 with venv.
# No internet on the GPU machine? Make a folder of wheels on a machine that has it, with the same
# Python version and platform, and bring it along:
#   benchmarks/gpu_check.sh --fetch-wheels wheels [pip download options, e.g. --python-version 3.11
#                           --platform manylinux_2_28_x86_64 --only-binary=:all:]
# It holds cupy-cuda12x, cuda-toolkit[nvrtc,cudart]==12.* (NVRTC and the CUDA runtime as nvidia-*
# wheels, used when the machine has no CUDA toolkit), numpy, numba, pytest, matplotlib, setuptools.
# Then, on the GPU machine:
#   benchmarks/gpu_check.sh --wheels wheels
#
# --dry-run runs steps 2-4 through the CPU stand-in ../shared/tools/cuda_on_cpu (no GPU, nothing
# installed, the benchmark as a smoke run, no time limits): everything but the timing.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="" DRY=0 LOG=gpu_check.log
PY=.venv/bin/python
DEPS=("cupy-cuda12x>=13" "cuda-toolkit[nvrtc,cudart]==12.*" "numpy>=1.24" "numba>=0.58" "pytest>=7"
      "matplotlib>=3.6" "setuptools>=64" "wheel")

case "${1:-}" in
    --fetch-wheels)
        [ $# -ge 2 ] || { echo "usage: $0 --fetch-wheels DIR [pip download options]" >&2; exit 2; }
        dir=$2
        shift 2
        exec python3 -m pip download -d "$dir" "$@" "${DEPS[@]}" ;;
    --wheels) WHEELS=$(cd "${2:?usage: $0 --wheels DIR}" && pwd) ;;
    --dry-run) DRY=1 ;;
    "") ;;
    *) echo "usage: $0 [--wheels DIR | --dry-run | --fetch-wheels DIR [pip options]]" >&2; exit 2 ;;
esac

exec > >(tee "$LOG") 2>&1
START=$SECONDS
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
SUMMARY=()

step() {  # name, time limit (s; 0: none, for shell functions), command...: run it, keep its
    local name=$1 limit=$2 t0=$SECONDS rc   # output and one summary line
    shift 2
    echo
    echo "=== $name"
    if [ $DRY = 1 ] || [ "$limit" = 0 ]; then
        "$@" 2>&1 | tee "$OUT/last"
    else
        timeout "$limit" "$@" 2>&1 | tee "$OUT/last"
    fi
    rc=${PIPESTATUS[0]}
    local verdict=ok
    [ $rc = 0 ] || verdict="FAILED (exit $rc)"
    [ $rc = 124 ] && verdict="TIMED OUT after $limit s"
    SUMMARY+=("$(printf '  %-30s %-24s %5d s' "$name" "$verdict" $((SECONDS - t0)))")
    return $rc
}

result() {  # the last pytest result line of the last step
    grep -E "[0-9]+ (passed|failed|error)" "$OUT/last" | tail -1 | sed 's/^=* *//; s/ *=*$//'
}

pip_install() {
    if [ -n "$WHEELS" ]; then
        $PY -m pip install -q --no-index --find-links "$WHEELS" "$@"
    else
        $PY -m pip install -q "$@"
    fi
}

environment() {
    [ -x $PY ] || python3 -m venv .venv || return 1
    if ! $PY -c 'import implicit_nn, numba, pytest' 2>/dev/null; then
        if [ -n "$WHEELS" ]; then       # offline: no build isolation, so setuptools comes first
            pip_install setuptools wheel && pip_install --no-build-isolation -e '.[test]' || return 1
        else
            pip_install -e '.[test]' || return 1
        fi
    fi
    $PY -c 'import cupy' 2>/dev/null || pip_install "cupy-cuda12x>=13" || return 1
    if ! ldconfig -p 2>/dev/null | grep -q libnvrtc && ! ls /usr/local/cuda*/lib64/libnvrtc.so* >/dev/null 2>&1 &&
       ! $PY -c 'import nvidia.cuda_nvrtc' 2>/dev/null; then
        echo "no CUDA toolkit found: NVRTC and the CUDA runtime from wheels"
        pip_install "cuda-toolkit[nvrtc,cudart]==12.*" || return 1
    fi
}

describe() {  # device, versions, commit; fails (with the reason) when the GPU backend cannot run
    command -v nvidia-smi >/dev/null && [ $DRY = 0 ] &&
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(date -u '+%Y-%m-%d %H:%M UTC')"
    $PY - <<'EOF'
import platform, sys
import cupy, numba, numpy
from implicit_nn.engine.gpu import gpu_available
ok, why = gpu_available()
emulated = " (the CPU stand-in cuda_on_cpu)" if getattr(cupy, "EMULATED", False) else ""
print(f"python {platform.python_version()}, numpy {numpy.__version__}, numba {numba.__version__}, "
      f"cupy {cupy.__version__}{emulated}")
if ok and not emulated:
    rt, drv = cupy.cuda.runtime.runtimeGetVersion(), cupy.cuda.runtime.driverGetVersion()
    print(f"CUDA runtime {rt // 1000}.{rt % 1000 // 10}, driver API {drv // 1000}.{drv % 1000 // 10}")
print(f"GPU backend: {why}")
sys.exit(0 if ok else 1)
EOF
}

if [ $DRY = 1 ]; then
    TOOLS=../shared/tools/cuda_on_cpu
    [ -d $TOOLS ] || { echo "gpu_check: --dry-run needs the stand-in at $TOOLS"; exit 1; }
    [ -x $PY ] || { echo "gpu_check: --dry-run needs .venv (make test)"; exit 1; }
    export PYTHONPATH=$(cd $TOOLS && pwd)/pyroot
    echo "gpu_check: DRY RUN through the CPU stand-in: results are checked, times mean nothing"
else
    step "environment" 0 environment || { printf '%s\n' "${SUMMARY[@]}"; exit 1; }
fi
step "device" 0 describe || { printf '%s\n' "${SUMMARY[@]}"; exit 1; }
DEVICE=$(cat "$OUT/last")

step "pytest -m gpu" 100 $PY -m pytest -q -m gpu -p no:cacheprovider
GPU_TESTS=$(result)
IMPLICIT_NN_GOLDEN_BACKEND=gpu step "golden load mode, 18 models" 90 \
    $PY -m pytest -q -p no:cacheprovider tests/test_golden_load.py
GOLDEN=$(result)
BENCH=(--repeats 2)
[ $DRY = 1 ] && BENCH=(--smoke)
step "bench_gpu.py" 150 $PY benchmarks/bench_gpu.py "${BENCH[@]}"
TABLE=$(sed -n '/^model /,$p' "$OUT/last")

echo
echo "=== summary: $((SECONDS - START)) s$([ $DRY = 1 ] && echo ', DRY RUN through the CPU stand-in (times mean nothing)')"
echo "$DEVICE"
printf '%s\n' "${SUMMARY[@]}"
echo "GPU tests:   ${GPU_TESTS:-no result}"
echo "golden load: ${GOLDEN:-no result}"
echo "benchmark (s/epoch; original = the published run's epoch 1 on the authors' GPU):"
echo "${TABLE:-  no result}" | sed 's/^/  /'
! grep -qE "FAILED|TIMED OUT" <<<"${SUMMARY[*]}"
