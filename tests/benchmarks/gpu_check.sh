#!/usr/bin/env bash
# One-call GPU check (issue 22 part 6, issue 24 part 4): on a machine with a CUDA GPU and a fresh copy of
# the repository, in one command,
#   1. prints nvidia-smi and the versions of torch, CUDA, numpy, h5py;
#   2. installs the carried wheels (.gpu-carry/wheels, made by tests/benchmarks/gpu_carry.sh: jsonschema,
#      uproot, awkward, ... which `python -m model` imports) into a scratch folder, offline;
#   3. runs the model tests (tests/model, not slow; the CUDA cases run where torch sees a GPU), in the
#      background while the GPU steps run;
#   4. trains the default run's models (config.yaml training.run, the same settings) on the carried real
#      images (.gpu-carry/data/{signal,background}/images.h5; synthetic images if absent) through
#      `python -m model train` on the device, all at once, and samples 20,000 images from each with
#      `python -m model sample`, one after the other, timing both;
#   5. runs the sampling benchmark (tests/benchmarks/bench_sampling.py) on the device (fp32 and bf16
#      autocast, with the images compared both ways) and, if time is left, on the machine's CPU
#      (1 thread and all cores);
#   6. runs the model benchmark at 100k images (bench_model.py --device cuda --n 100000 --epochs 1);
#   7. packs everything into at most 8 files under $OUT: summary.md (what to read first), logs.tar.gz,
#      bench_sampling_{cuda,cpu}.json, generated_{signal,background}.tar (the generated .h5 per sample).
# Each step has a time limit and the whole script a budget (BUDGET_S, default 420 s), so one slow step
# cannot eat the rest; a step left without time is skipped and says so in summary.md.
#
#   tests/benchmarks/gpu_check.sh                         # on the GPU machine (OUT: where results go)
#   DEVICE=cpu QUICK=1 tests/benchmarks/gpu_check.sh      # the same steps, tiny, on a CPU (a dry run)
#
# Environment: OUT (default ./gpu-out), DEVICE (cuda | cpu; default cuda), QUICK (1: tiny sizes),
# BUDGET_S, PYTHON (default: python3, else python), CARRY (default .gpu-carry).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
BUDGET_S=${BUDGET_S:-$([ "$QUICK" = 1 ] && echo 900 || echo 420)}
CARRY=${CARRY:-$ROOT/.gpu-carry}
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
LOGS=$WORK/logs
mkdir -p "$OUT" "$LOGS" "$WORK/site"
T0=$(date +%s)
STEPS=$WORK/steps.tsv
printf 'step\trc\tseconds\tlimit_s\n' > "$STEPS"

elapsed() { echo $(( $(date +%s) - T0 )); }
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }  # seconds since $1 (ns)
# step NAME LIMIT_S CMD...: run CMD with at most LIMIT_S seconds (less if the budget is nearly spent),
# output to logs/NAME.log; records rc and seconds (rc 124: timed out; "skipped": no time left)
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( BUDGET_S - $(elapsed) ))
  (( left < limit )) && limit=$left
  if (( limit < 10 )); then
    printf '%s\tskipped\t0\t0\n' "$name" >> "$STEPS"; echo "== $name: skipped (budget spent)"; return 0
  fi
  echo "== $name (limit ${limit} s, at $(elapsed) s)"
  local s rc
  s=$(date +%s%N)
  # bash -c: a step may be one of the functions below (exported)
  timeout --kill-after=5 "$limit" bash -c '"$@"' step "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(since "$s")" "$limit" >> "$STEPS"
  echo "   rc=$rc; $(tail -n 2 "$LOGS/$name.log" | tr '\n' ' ' | cut -c1-200)"
  return 0
}

# ---- 1. the machine
{
  echo "date: $(date -u)"; uname -a
  nvidia-smi 2>&1 || echo "(no nvidia-smi)"
  "$PYTHON" -c "import sys, torch, numpy, h5py, scipy, sklearn; print('python', sys.version.split()[0], '| torch',
torch.__version__, '| CUDA', torch.version.cuda, '| GPU', torch.cuda.get_device_name(0) if torch.cuda.is_available()
else None, '| numpy', numpy.__version__, '| h5py', h5py.__version__, '| scipy', scipy.__version__, '| sklearn',
sklearn.__version__)"
  nproc; free -g 2>/dev/null | head -2
} > "$LOGS/machine.log" 2>&1
cat "$LOGS/machine.log"

# ---- 2. the carried wheels (only those this Python lacks), offline
export PYTHONPATH="$WORK/site:$ROOT"
if ! "$PYTHON" -c "import jsonschema, uproot, awkward" 2>/dev/null; then
  if compgen -G "$CARRY/wheels/*.whl" > /dev/null; then
    step install_wheels 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --target "$WORK/site" "$CARRY"/wheels/*.whl
  else
    echo "error: jsonschema/uproot/awkward are missing and $CARRY/wheels holds no wheels: run" \
         "tests/benchmarks/gpu_carry.sh where pip has network, and carry .gpu-carry" | tee -a "$LOGS/machine.log"
  fi
fi
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "error: DEVICE=cuda but torch sees no CUDA GPU (use DEVICE=cpu for a dry run)" | tee -a "$LOGS/machine.log"
  exit 2
fi

# ---- sizes (QUICK: a dry run in a minute or two on a CPU)
if [ "$QUICK" = 1 ]; then
  N_GEN=500; EPOCHS='"epochs": 1,'; MAX_IMAGES="--max-images 300"; N_SYN=400
  BENCH_SAMPLING_ARGS=(--batch-sizes 256 1024 --n-cpu 2000 --n-cuda 4000 --compare-n 1000)
  CPU_BENCH_ARGS=(--batch-sizes 256 1024 --n-cpu 2000)
  BENCH_MODEL_ARGS=(--n 1000 --epochs 1 --models decoupled_fc decoupled_deconv)
  TESTS=(tests/model/test_sampling_speed.py)
else
  N_GEN=20000; EPOCHS=''; MAX_IMAGES=''; N_SYN=2200
  BENCH_SAMPLING_ARGS=(--batch-sizes 4096 65536 262144 --n-cpu 20000 --n-cuda 500000 --compare-n 20000)
  CPU_BENCH_ARGS=(--batch-sizes 1024 4096 --n-cpu 20000)
  BENCH_MODEL_ARGS=(--n 100000 --epochs 1 --models decoupled_fc decoupled_deconv decoupled_deconv_calibrated
                    decoupled_fc_calibrated decoupled_deconv_conditional lagan sparse_vae)
  TESTS=(tests/model)
fi

# ---- real images (carried), else synthetic ones
DATA=$WORK/data
for sample in signal background; do
  mkdir -p "$DATA/$sample"
  if [ -f "$CARRY/data/$sample/images.h5" ]; then
    ln -s "$CARRY/data/$sample/images.h5" "$DATA/$sample/images.h5"
  else
    echo "no carried $sample images: synthetic ones" | tee -a "$LOGS/machine.log"
    "$PYTHON" -m model synthetic --out "$DATA/$sample/images.h5" --n "$N_SYN" --sample "$sample" \
      >> "$LOGS/machine.log" 2>&1
  fi
done

# ---- 3. model tests, in the background (CPU; their CUDA cases on the GPU)
XDIST=()
"$PYTHON" -c "import xdist" 2>/dev/null && [ "$QUICK" != 1 ] && XDIST=(-n 4)
( step model_tests 300 "$PYTHON" -m pytest "${TESTS[@]}" -q -m "not slow" -p no:cacheprovider "${XDIST[@]}" \
    --ignore=tests/model/test_workflow.py ) &
TESTS_PID=$!

# --config-json of `python -m model <command>` for one model: config.yaml's training section (schema
# defaults filled in), the keys the command reads, `models` reduced to the model, plus overrides
settings() {
  "$PYTHON" - "$@" <<'EOF'
import json, sys
import yaml
from common.settings import check_section, schema_path, section_json
from model.settings import READS
command, model, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
section = yaml.safe_load(open("config.yaml"))["training"]
check_section(section, schema_path("training"), ("training",))
print(section_json(section, READS[command], models={model: section["models"][model]}, **extra))
EOF
}
MODELS=$("$PYTHON" -c "import yaml; print(' '.join(yaml.safe_load(open('config.yaml'))['training']['run']))")
[ "$QUICK" = 1 ] && MODELS=$(echo "$MODELS" | cut -d' ' -f1-2)  # a dry run: two of them
SEED=$("$PYTHON" -c "import yaml; print(yaml.safe_load(open('config.yaml'))['seed'])")
echo "models: $MODELS; seed $SEED; device $DEVICE"

# ---- 4. train every model of both samples at once, then sample each (timed)
TIMES=$WORK/cli_times.tsv
printf 'command\tsample\tmodel\tseconds\trc\n' > "$TIMES"
timed() {  # timed COMMAND SAMPLE MODEL CMD...: wall seconds into cli_times.tsv
  local what=$1 sample=$2 model=$3; shift 3
  local s rc; s=$(date +%s%N); "$@"; rc=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$what" "$sample" "$model" "$(since "$s")" "$rc" >> "$TIMES"
}
train_all() {
  local pids=()
  trap 'kill "${pids[@]}" 2>/dev/null; exit 124' TERM  # a timed-out step stops its trainings too
  for sample in signal background; do
    for model in $MODELS; do
      mkdir -p "$WORK/models/$sample/$model"
      timed train "$sample" "$model" "$PYTHON" -m model train --in "$DATA/$sample/images.h5" \
        --out "$WORK/models/$sample/$model/model.pt" --model-name "$model" --sample "$sample" --seed "$SEED" \
        --no-progress $MAX_IMAGES \
        --config-json "$(settings train "$model" "{$EPOCHS \"device\": \"$DEVICE\"}")" \
        > "$LOGS/train_${sample}_${model}.log" 2>&1 &
      pids+=($!)
      [ "$DEVICE" = cpu ] && wait $!  # a CPU dry run: one at a time
    done
  done
  local rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; return $rc
}
sample_all() {
  for sample in signal background; do
    mkdir -p "$WORK/generated/$sample"
    for model in $MODELS; do
      [ -f "$WORK/models/$sample/$model/model.pt" ] || continue
      timed sample "$sample" "$model" "$PYTHON" -m model sample --model "$WORK/models/$sample/$model/model.pt" \
        --real "$DATA/$sample/images.h5" --out "$WORK/generated/$sample/$model.h5" --model-name "$model" \
        --sample "$sample" --seed "$SEED" --no-progress \
        --config-json "$(settings sample "$model" "{\"device\": \"$DEVICE\", \"n_generated\": $N_GEN}")" \
        > "$LOGS/sample_${sample}_${model}.log" 2>&1
    done
  done
}
export -f since timed settings train_all sample_all
export PYTHON DEVICE WORK DATA LOGS TIMES MODELS SEED N_GEN EPOCHS MAX_IMAGES
step train_models 240 train_all
step sample_models 150 sample_all

# ---- 5. sampling benchmark on the device, then on this machine's CPU
SIM_COST=()
[ -f "$CARRY/data/simulation_cost.json" ] && SIM_COST=(--simulation-cost "$CARRY/data/simulation_cost.json")
if [ "$DEVICE" = cuda ]; then
  step bench_sampling_cuda 150 "$PYTHON" tests/benchmarks/bench_sampling.py "$WORK/models" --device cuda \
    --precision fp32 bf16 --real-dir "$DATA" "${BENCH_SAMPLING_ARGS[@]}" "${SIM_COST[@]}" \
    --json "$OUT/bench_sampling_cuda.json" --md "$WORK/bench_sampling_cuda.md"
fi

# ---- 6. the model benchmark at 100k images
step bench_model 150 "$PYTHON" tests/benchmarks/bench_model.py --device "$DEVICE" --threads 1 "${BENCH_MODEL_ARGS[@]}"

wait "$TESTS_PID"
step bench_sampling_cpu 120 "$PYTHON" tests/benchmarks/bench_sampling.py "$WORK/models" --device cpu --threads 1 0 \
  --no-startup "${CPU_BENCH_ARGS[@]}" \
  "${SIM_COST[@]}" --json "$OUT/bench_sampling_cpu.json" --md "$WORK/bench_sampling_cpu.md"

# ---- 7. pack: summary.md, logs.tar.gz, generated_{sample}.tar (at most 8 files in $OUT)
{
  echo "# GPU check ($(date -u), $(elapsed) s of a ${BUDGET_S} s budget; DEVICE=$DEVICE QUICK=$QUICK)"
  echo; echo '```'; cat "$LOGS/machine.log"; echo '```'
  echo; echo "## Steps (rc 124: timed out)"; echo; echo '```'; column -t -s $'\t' "$STEPS" 2>/dev/null || cat "$STEPS"
  echo '```'
  echo; echo "## CLI wall times (python -m model train | sample: process start-up, CUDA set-up, training or"
  echo "sampling $N_GEN images, writing; on a GPU the trainings ran all at once)"; echo; echo '```'
  column -t -s $'\t' "$TIMES" 2>/dev/null || cat "$TIMES"; echo '```'
  echo; echo "## Sampling loop as the sampler recorded it (generated-file attributes)"; echo; echo '```'
  "$PYTHON" - "$WORK/generated" <<'EOF' 2>&1
import sys
from pathlib import Path
import h5py
for f in sorted(Path(sys.argv[1]).glob("*/*.h5")):
    with h5py.File(f) as h:
        a = h.attrs
        n = h["images"].shape[0]
        print(f"{f.parent.name:<11}{f.stem:<30} n={n} load {a['sampling_load_s']:.3f} s, loop {a['sampling_loop_s']:.3f} s"
              f" = {1e6 * a['sampling_loop_s'] / n:.2f} us/image, batch {a['sampling_batch_size']},"
              f" {a['sampling_device']} ({a['sampling_device_name']})")
EOF
  echo '```'
  for f in bench_sampling_cuda bench_sampling_cpu; do
    [ -f "$WORK/$f.md" ] && { echo; echo "## $f"; echo; cat "$WORK/$f.md"; }
  done
  echo; echo "## bench_model"; echo; echo '```'; grep -v "^\s*$" "$LOGS/bench_model.log" 2>/dev/null | tail -n 30
  echo '```'
  echo; echo "## model tests (tail)"; echo; echo '```'; tail -n 25 "$LOGS/model_tests.log" 2>/dev/null; echo '```'
} > "$OUT/summary.md"
tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs steps.tsv cli_times.tsv $(cd "$WORK" && ls models/*/*/train_log.csv 2>/dev/null)
for sample in signal background; do
  [ -d "$WORK/generated/$sample" ] && tar -cf "$OUT/generated_$sample.tar" -C "$WORK/generated" "$sample"
done
ls -la "$OUT"
cat "$OUT/summary.md"
rm -rf "$WORK"
