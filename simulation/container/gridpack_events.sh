#!/usr/bin/env bash
# One chunk of LHE events from a MadGraph gridpack (its standard run.sh), in a private folder.
#
# usage: gridpack_events.sh GRIDPACK_TAR_GZ NEVENTS SEED OUT_LHE_GZ
#   SEED: MG5 random seed of this chunk (derived from (seed, sample, chunk, "madgraph"))
# The LHE appears under OUT_LHE_GZ only when run.sh succeeded and wrote events.
set -euo pipefail
if [[ $# -ne 4 ]]; then echo "usage: $0 GRIDPACK_TAR_GZ NEVENTS SEED OUT_LHE_GZ" >&2; exit 2; fi
gridpack=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
nevents=$2 seed=$3 out=$4
[[ -f "$gridpack" ]] || { echo "error: gridpack $gridpack does not exist" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/gridpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$gridpack" -C "$work"
( cd "$work" && ./run.sh "$nevents" "$seed" )
if [[ ! -s "$work/events.lhe.gz" ]]; then
    echo "error: run.sh of $gridpack (seed $seed) wrote no events.lhe.gz" >&2
    exit 1
fi
mv -f "$work/events.lhe.gz" "$out"
