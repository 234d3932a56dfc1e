#!/usr/bin/env bash
# One chunk of the container backend, LHE -> Delphes ROOT, streamed (no HepMC on disk):
#
#   Pythia 8 shower (MG5aMC_PY8_interface; card: HEPMCoutput:file = /dev/fd/3)
#     | muon_filter.awk (generator-level muon window; counts JSON)
#     | DelphesHepMC2 CARD (reads standard input) -> OUT.root.part -> OUT.root
#
# usage: shower_to_delphes.sh SHOWER_COMMAND SHOWER_CMND PTMIN PTMAX ETAMAX COUNTS_JSON \
#                             DELPHES_HEPMC2 DELPHES_CARD OUT_ROOT
#   SHOWER_COMMAND  the program that showers a card, e.g. /opt/pythia/8.306/MG5aMC_PY8_interface
#                   (may hold arguments: "python -m simulation.container shower" does the same
#                   with pythia8mc, for machines without the interface)
# The shower's HepMC goes to file descriptor 3, which is the pipe; its own messages go to
# shower.log beside the card. A plain pipeline: if any step dies, the next one sees the
# stream end (the filter reports a truncated stream) and nothing waits forever.
# The final ROOT file appears only when every step succeeded; a failed step names itself.
set -euo pipefail

if [[ $# -ne 9 ]]; then
    echo "usage: $0 SHOWER_COMMAND SHOWER_CMND PTMIN PTMAX ETAMAX COUNTS_JSON DELPHES_HEPMC2 DELPHES_CARD OUT_ROOT" >&2
    exit 2
fi
read -r -a shower_command <<< "$1"
cmnd=$2 ptmin=$3 ptmax=$4 etamax=$5 counts=$6 delphes=$7 card=$8 out=$9
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
part="$out.part"
shower_log="$(dirname "$cmnd")/shower.log"

for f in "$cmnd" "$card"; do
    [[ -f "$f" ]] || { echo "error: $f does not exist (render it with python -m simulation.container)" >&2; exit 2; }
done
if ! grep -Eq '^[[:space:]]*HEPMCoutput:file[[:space:]]*=[[:space:]]*/dev/fd/3[[:space:]]*$' "$cmnd"; then
    echo "error: $cmnd must write its HepMC to /dev/fd/3 (HEPMCoutput:file); re-render it with shower-card" >&2
    exit 2
fi
rm -f "$part" "$counts"
mkdir -p "$(dirname "$out")" "$(dirname "$counts")"
trap 'rm -f "$part"' EXIT

set +e
{ "${shower_command[@]}" "$cmnd" 3>&1 1>"$shower_log" 2>&1; } \
    | awk -f "$here/muon_filter.awk" -v ptmin="$ptmin" -v ptmax="$ptmax" -v etamax="$etamax" -v counts="$counts" \
    | "$delphes" "$card" "$part"
status=("${PIPESTATUS[@]}")
set -e

if [[ ${status[0]} -ne 0 ]]; then
    echo "error: the Pythia shower (${1} $cmnd) failed with exit code ${status[0]}; its log: $shower_log" >&2
    tail -n 20 "$shower_log" >&2 || true
    exit 1
fi
if [[ ${status[1]} -ne 0 ]]; then
    echo "error: the muon filter rejected the shower's HepMC stream (exit code ${status[1]}); see above" >&2
    exit 1
fi
if [[ ${status[2]} -ne 0 ]]; then
    echo "error: DelphesHepMC2 failed with exit code ${status[2]} on $card; see its messages above" >&2
    exit 1
fi
kept=$(sed -n 's/.*"kept": *\([0-9]*\).*/\1/p' "$counts")
if [[ -z "$kept" || "$kept" -eq 0 ]]; then
    echo "error: no showered event passed the muon filter ($(cat "$counts" 2>/dev/null)); generate more LHE events per chunk" >&2
    exit 1
fi
mv -f "$part" "$out"
trap - EXIT
echo "shower_to_delphes: $(cat "$counts") -> $out" >&2
