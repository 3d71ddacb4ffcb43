#!/usr/bin/env bash
# The GPU figures of #20 in one run (under 8 minutes on an H100): the engine on the mmBERT-base
# shape in bf16 (batch 1, 16, 64; eager and compiled; no cache and the dual cache; beside the
# compute-bound estimate), the server under 1, 16 and 64 concurrent clients on CUDA, a soak of
# mixed requests at 64 concurrent clients (#21), TurBLiMP pairs per second by each likelihood
# (#24), and CPT throughput at the paper's shape.
#
#   bash benchmarks/gpu_suite.sh [--dry-run] [--model runs/demo/sft/model]
#
# --dry-run runs every part on a tiny model on the CPU, to check the script where no GPU is lent.
# The server part needs an SFT model folder (`uv run diffutron demo` writes runs/demo/sft/model;
# carry it to the GPU machine); without one it is skipped and says so.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 DIFFUTRON_NO_PROGRESS=1 PYTHONUNBUFFERED=1

dry=""
model="runs/demo/sft/model"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry="--dry-run" ;;
        --model) model="$2"; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

run() {  # a part: its title, then the command; a failing part is said and the next one runs
    echo; echo "## $1"; shift
    local start=$SECONDS
    "$@" || echo "(this part failed with status $?)"
    echo "($(( SECONDS - start )) s)"
}

start=$SECONDS
echo "# Diffutron GPU suite $(date -u +%Y-%m-%dT%H:%MZ) $dry"
uv run python -c "import torch; print('torch', torch.__version__, '| CUDA:', torch.cuda.is_available() and torch.cuda.get_device_name())"

if [ -n "$dry" ]; then
    run "engine (tiny model, CPU)" uv run python benchmarks/engine_gpu.py --dry-run --batches 1,4 --budget 60
    device=cpu; clients=1,4
else
    run "engine (mmBERT-base shape, bf16)" uv run python benchmarks/engine_gpu.py --budget 240
    device=cuda; clients=1,16,64
fi
if [ -f "$model/config.json" ]; then
    run "server ($device, clients $clients)" uv run python benchmarks/serve_load.py \
        --model "$model" --device "$device" --clients "$clients" --rounds 1 --max-batch 64
    if [ -n "$dry" ]; then soak=(--requests 200 --concurrency 16); else soak=(--requests 2000 --concurrency 64); fi
    run "soak ($device, ${soak[*]})" uv run python benchmarks/serve_soak.py \
        --model "$model" --device "$device" --max-batch 64 --no-steady "${soak[@]}"
else
    echo; echo "## server: skipped, no SFT model at $model (uv run diffutron demo writes one)"
fi
if [ -n "$dry" ]; then
    run "minimal pairs (tiny model, CPU)" uv run python benchmarks/eval_cost.py --pairs --count 8
else
    run "minimal pairs (mmBERT-base shape, bf16; #24)" uv run python benchmarks/eval_cost.py \
        --pairs --mmbert --device cuda --count 256 --batch-size 512
fi
if [ -n "$dry" ]; then
    run "CPT throughput (tiny shape, CPU)" uv run python benchmarks/train_throughput.py --dry-run
else
    run "CPT throughput (paper shape)" uv run python benchmarks/train_throughput.py --skip-cpu --steps 10
fi
echo; echo "suite wall time $(( SECONDS - start )) s"
