#!/usr/bin/env bash
# The device check (issue 19; docs/backends.md, "Device check"), for a GPU host that has torch
# with CUDA but no network and no snakemake (the lent H200):
#   1. the GPU's facts from nvidia-smi;
#   2. snakemake from the wheels tools/gpu_check_prepare.sh put in .gpu-wheels/, then this
#      project without its pinned dependencies (the host's own torch stays);
#   3. the gpu-marked tests (pytest -m gpu);
#   4. the workflow on config/gpu_check.yaml (pytorch_cuda fp32/fp16/bf16, resnet18, b1 and b8);
#   5. torch.utils.benchmark on the same checkpoint (tools/gpu_check_bench.py);
#   6. the summary (tools/gpu_check_summary.py).
# Writes summary.md, summary.json, report.html, torch_benchmark.json, results.tar.gz and
# gpu_check.log into OUTPUT_DIR. A deadline caps every step so that the whole script ends well
# inside 8 minutes; a step that fails or runs out of time is reported and the next one runs.
#
#   tools/gpu_check.sh OUTPUT_DIR
#   GPU_CHECK_WORKDIR   where the workflow runs (default: OUTPUT_DIR/workflow)
#   GPU_CHECK_WHEELS    the wheels folder (default: .gpu-wheels in the checkout)
#   GPU_CHECK_SECONDS   the deadline for the whole script (default: 420)
#   PYTHON              the interpreter whose torch sees the GPU (default: python3)
# Exit status: 0 all steps passed, 1 a step failed, 2 stopped before any step (one line says why).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "gpu_check: usage: tools/gpu_check.sh OUTPUT_DIR" >&2
  exit 2
fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=${GPU_CHECK_WORKDIR:-$out/workflow}
wheels=${GPU_CHECK_WHEELS:-$repo/.gpu-wheels}
python=${PYTHON:-python3}
deadline=${GPU_CHECK_SECONDS:-420}
log=$out/gpu_check.log
steps=$work/gpu_check_steps.tsv
: >"$log"
export repo out work wheels python log
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONUNBUFFERED=1

say() {
  printf '[%s +%ds] %s\n' "$(date -u +%H:%M:%S)" "$SECONDS" "$*" | tee -a "$log"
}

# Before anything is installed: one line naming the fix, exit 2.
stop() {
  say "gpu_check: $*"
  exit 2
}

if ! command -v nvidia-smi >/dev/null; then
  stop "no GPU here: nvidia-smi is not installed; run this on the GPU host (docs/backends.md, Device check)"
fi
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  stop "no GPU here: nvidia-smi lists none; run this on the GPU host (docs/backends.md, Device check)"
fi
if ! cuda=$("$python" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())' 2>&1); then
  stop "$python cannot import torch (${cuda##*$'\n'}): set PYTHON to the interpreter that has torch with CUDA"
fi
# the last line: torch may warn on stderr before it
cuda=${cuda##*$'\n'}
if [[ $cuda != *True ]]; then
  stop "torch sees no CUDA device (torch, CUDA, available: $cuda): install a CUDA build of torch or set PYTHON"
fi
if ! compgen -G "$wheels/snakemake-*.whl" >/dev/null; then
  stop "no snakemake wheel in $wheels: run tools/gpu_check_prepare.sh where pip reaches the registry, and carry .gpu-wheels"
fi

mkdir -p "$work"
: >"$steps"
failed=()
# step NAME SECONDS FUNCTION: run FUNCTION for at most SECONDS (less if the deadline is nearer),
# its output into the log and on the console; note its exit status and duration.
step() {
  local name=$1 limit=$2 function=$3 left=$((deadline - SECONDS)) start=$SECONDS rc=0
  ((left < limit)) && limit=$left
  if ((limit < 5)); then
    say "step $name: not run, the ${deadline} s deadline is reached"
    printf '%s\t%s\t%s\n' "$name" 124 0 >>"$steps"
    failed+=("$name")
    return 0
  fi
  say "step $name: start (at most ${limit} s)"
  set +e
  timeout --kill-after=10 "$limit" bash -c "$function" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  set -e
  printf '%s\t%s\t%s\n' "$name" "$rc" $((SECONDS - start)) >>"$steps"
  if ((rc == 0)); then
    say "step $name: ok in $((SECONDS - start)) s"
  else
    say "step $name: FAILED (exit $rc$( ((rc == 124)) && echo ', out of time')) in $((SECONDS - start)) s"
    failed+=("$name")
  fi
}

gpu_facts() {
  nvidia-smi
  nvidia-smi --format=csv,nounits \
    --query-gpu=index,name,uuid,driver_version,compute_cap,memory.total,clocks.sm,clocks.max.sm,power.limit \
    | tee "$work/nvidia-smi.csv"
}

install() {
  local snakemake
  # the version the project pins, so that the workflow runs under the snakemake it is tested with
  snakemake=$("$python" -c 'import sys, tomllib
extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
print(next(r for r in extras["workflow"] if r.startswith("snakemake")))' "$repo/pyproject.toml")
  "$python" -m pip install --no-index --find-links "$wheels" "$snakemake"
  # no deps: the pins (torch 2.14.1, onnx ...) are not on this host and must not replace its own
  "$python" -m pip install --no-index --find-links "$wheels" --no-deps -e "$repo"
  "$python" -c 'import deploybench, snakemake, torch, torchvision
print("snakemake", snakemake.__version__, "torch", torch.__version__, "torchvision", torchvision.__version__)'
}

gpu_tests() {
  local limit=()
  "$python" -c 'import pytest_timeout' 2>/dev/null && limit=(--timeout 120)
  cd "$repo"
  "$python" -m pytest -m gpu -p no:cacheprovider -q -rs "${limit[@]}" \
    --junitxml "$work/pytest.xml" tests
}

run_workflow() {
  cd "$repo"
  "$python" -m snakemake report summary --snakefile "$repo/Snakefile" --directory "$work" \
    --configfile "$repo/config/gpu_check.yaml" --cores "$(nproc)" --keep-going
}

torch_benchmark() {
  "$python" "$repo/tools/gpu_check_bench.py" "$work/results/models/resnet18" \
    "$out/torch_benchmark.json"
}

summarize() {
  "$python" "$repo/tools/gpu_check_summary.py" "$work" "$out"
}

export -f gpu_facts install gpu_tests run_workflow torch_benchmark summarize
say "gpu_check: torch $cuda; output in $out, workflow in $work, deadline ${deadline} s"
step gpu_facts 30 gpu_facts
step install 90 install
step gpu_tests 150 gpu_tests
step workflow 240 run_workflow
step torch_benchmark 60 torch_benchmark
step summary 30 summarize

if [[ -f $work/reports/report.html ]]; then
  cp "$work/reports/report.html" "$out/report.html"
fi
kept=()
for folder in results logs benchmarks; do
  [[ -d $work/$folder ]] && kept+=("$folder")
done
if ((${#kept[@]})); then
  tar -czf "$out/results.tar.gz" -C "$work" "${kept[@]}"
fi
if ((${#failed[@]})); then
  say "gpu_check: done in ${SECONDS} s; failed: ${failed[*]} (see $log)"
  exit 1
fi
say "gpu_check: done in ${SECONDS} s; every step passed"
