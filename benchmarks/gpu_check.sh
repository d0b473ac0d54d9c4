#!/usr/bin/env bash
# The GPU check, in one command: every figure the speed issue asks of a CUDA machine.
#
# On a GPU machine (from the project root; see ../shared/tools/gpu-wheels.sh for the PyAV
# wheel, carried as .whl):   bash benchmarks/gpu_check.sh
# Anywhere, as a dry run on the CPU with tiny sizes (what the test suite runs):
#                            bash benchmarks/gpu_check.sh --dry-run
#
# In order, each step under its own time limit (so one hang cannot eat the lease), every log
# and figure written under $OUT (or ./gpu-check-out when OUT is unset):
#   1. pytest -m gpu                                  (gpu_tests.log)
#   2. benchmarks/throughput.py --device cuda, 1920x1080 -> 3840x2160: the codec floor
#      (decode + encode alone), vidsr bicubic, fast and quality end to end, the model alone,
#      and --compile                                  (throughput_<model>.log/.json)
#   3. device and host memory at 1280x720 and 3840x2160 input (memory.log/.json)
#   4. vidsr stream 1280x720 -> 2560x1440 fps and latency (stream.log)
# Budget: about 6 minutes on an H200 with a warm disk; the step limits add up to 8.
# The script never stops at a failed step: it records the status in summary.txt and goes on.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT_DIR="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.txt"
: >"$SUMMARY"
started=$(date +%s)

# PyAV may arrive as a carried wheel (the GPU machine has no PyAV); vidsr is imported from
# a tree laid out as it installs (models/ and training/ become vidsr.models/.training).
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/vidsr-site .whl/*.whl >"$OUT_DIR/wheels.log" 2>&1 \
        || echo "wheels: install failed (see wheels.log)" >>"$SUMMARY"
    export PYTHONPATH="/tmp/vidsr-site${PYTHONPATH:+:$PYTHONPATH}"
fi
TREE=$(mktemp -d /tmp/vidsr-tree.XXXXXX)
python3 .ci/installed_tree.py "$TREE"
export PYTHONPATH="$TREE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [ $DRY = 1 ]; then
    DEVICE=cpu; SIZE=192x108; FRAMES=4; MEM_SIZES=160x90; STREAM=(--sizes 160x120 --seconds 1)
    MODELS=(bicubic fast); COMPILE=(); PYTEST=(-m gpu tests/test_gpu.py)
else
    DEVICE=cuda; SIZE=1920x1080; FRAMES=60; MEM_SIZES=1280x720,3840x2160
    STREAM=(--sizes 1280x720 --seconds 6); MODELS=(bicubic fast quality); COMPILE=(--compile)
    PYTEST=(-m gpu)
fi

step() {  # step NAME LIMIT_S COMMAND...: run, log, record the status and the time
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    timeout "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
    local rc=$?
    local took=$(( $(date +%s) - t0 ))
    local state=ok
    [ $rc = 124 ] && state="timed out after ${limit}s"
    [ $rc != 0 ] && [ $rc != 124 ] && state="failed (exit $rc)"
    echo "$name: $state, ${took}s" | tee -a "$SUMMARY"
}

{
    echo "== gpu_check $( [ $DRY = 1 ] && echo '(dry run on the CPU)' ) $(date -u +%FT%TZ)"
    python3 -c "import torch, platform; print('python', platform.python_version(), 'torch', \
torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0) \
if torch.cuda.is_available() else 'no GPU')"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader
} >>"$SUMMARY" 2>&1

step gpu_tests 120 python3 -m pytest -q -p no:cacheprovider "${PYTEST[@]}"
for model in "${MODELS[@]}"; do
    extra=()
    [ "$model" = fast ] && extra=("${COMPILE[@]}")
    step "throughput_$model" 150 python3 benchmarks/throughput.py --device "$DEVICE" \
        --size "$SIZE" --frames "$FRAMES" --model "$model" --repeats 1 --skip-memory \
        --preset veryfast "${extra[@]}" --json "$OUT_DIR/throughput_$model.json"
done
step memory 90 python3 benchmarks/memory.py --device "$DEVICE" --sizes "$MEM_SIZES" \
    --models bicubic,fast --frames 4 --json "$OUT_DIR/memory.json"
step stream 60 python3 benchmarks/stream_latency.py --colour shot "${STREAM[@]}"

echo "total: $(( $(date +%s) - started ))s" | tee -a "$SUMMARY"
rm -rf "$TREE"
