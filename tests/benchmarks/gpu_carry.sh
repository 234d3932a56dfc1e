#!/usr/bin/env bash
# Prepare .gpu-carry/ (git-ignored) for tests/benchmarks/gpu_check.sh and device_study.py on a GPU machine
# that has torch (CUDA), numpy, scipy, h5py, PyYAML, tqdm, scikit-learn, matplotlib and pytest but no
# network and none of jsonschema, uproot, awkward, mplhep, hist (which `python -m model|analysis` import):
#   .gpu-carry/wheels/   the missing packages as CPython 3.12 manylinux x86-64 wheels, the project's pins
#   .gpu-carry/data/     {sample}/images.h5 of a finished run (real images to train on and compare with)
#                        and tables/simulation_cost.json when the run has it (the speed-up column)
#   .gpu-carry/study/NAME/{sample}/images.h5   for each NAME=OUTDIR given (device_study.py --data)
#
#   tests/benchmarks/gpu_carry.sh [RUN_OUTDIR] [NAME=OUTDIR ...]     (default: results)
#
# Needs network access here (pip download from PyPI); ~12 MB of wheels, ~2-7 MB of images per file.
set -euo pipefail
cd "$(dirname "$0")/../.."
run=${1:-results}
shift || true
carry=.gpu-carry
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
mkdir -p "$carry/wheels" "$carry/data"

# what the model CLI needs beyond the GPU machine's packages (pins from envs/constraints.txt)
pin() { grep -i "^$1==" envs/constraints.txt | head -1; }
pkgs=()
for name in jsonschema jsonschema-specifications referencing rpds-py uproot awkward awkward-cpp cramjam \
            importlib-metadata lazy-importer mplhep mplhep_data uhi hist boost-histogram histoprint; do
  p=$(pin "$name" || true)
  if [ -z "$p" ]; then  # not pinned here (a dependency of a dependency): the version installed here
    v=$("$py" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    p="$name${v:+==$v}"
  fi
  pkgs+=("$p")
done
echo "downloading: ${pkgs[*]}"
plat=()
for t in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux_2_24_x86_64 manylinux1_x86_64; do plat+=(--platform "$t"); done
"$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d "$carry/wheels" "${pkgs[@]}"

for sample in signal background; do
  if [ -f "$run/$sample/images.h5" ]; then
    mkdir -p "$carry/data/$sample"
    cp "$run/$sample/images.h5" "$carry/data/$sample/images.h5"
  else
    echo "warning: $run/$sample/images.h5 not found; gpu_check.sh trains on synthetic images instead" >&2
  fi
done
if [ -f "$run/tables/simulation_cost.json" ]; then cp "$run/tables/simulation_cost.json" "$carry/data/"; fi
for spec in "$@"; do  # NAME=OUTDIR: another run's images for device_study.py --data NAME=.gpu-carry/study/NAME
  name=${spec%%=*} dir=${spec#*=}
  for sample in signal background; do
    [ -f "$dir/$sample/images.h5" ] || { echo "error: $dir/$sample/images.h5 not found" >&2; exit 2; }
    mkdir -p "$carry/study/$name/$sample"
    cp "$dir/$sample/images.h5" "$carry/study/$name/$sample/images.h5"
  done
done
du -sh "$carry"/*
echo "carry it: run tests/benchmarks/gpu_check.sh with .gpu-carry in the machine's working tree"
