# Generator-level muon filter for HepMC2 (IO_GenEvent ASCII) streams, run inside the image
# (awk is in every base image; the MG5 + Pythia + Delphes image has no Python HEP stack).
#
# Keeps the events that hold a final-state (status 1) muon with PTMIN <= pT <= PTMAX (GeV) and
# |eta| < ETAMAX: the same window as the native backend's filter (config simulation.filter),
# so Delphes and pile-up time is spent only on useful events. Streams: one event in memory.
#
#   awk -f muon_filter.awk -v ptmin=9 -v ptmax=16 -v etamax=2.5 -v counts=COUNTS.json IN.hepmc > OUT.hepmc
#
# Writes {"backend": "container", "generation": {"generated": N, "kept": M}} to `counts` (the
# keys of the native backend's {sample}/generator/chunk{i}.json). Exits 3 (message on stderr) when the input is
# not HepMC2, or is truncated (no END_EVENT_LISTING line: the shower died mid-stream).
function flush(    i) {
    if (n_lines > 0) {
        generated++
        if (keep) { kept++; for (i = 1; i <= n_lines; i++) print lines[i] }
    }
    n_lines = 0; keep = 0
}
function fail(msg) { print "muon_filter.awk: error: " msg > "/dev/stderr"; failed = 1; exit 3 }
BEGIN {
    if (ptmin == "" || ptmax == "" || etamax == "") fail("set -v ptmin=... -v ptmax=... -v etamax=... (GeV, GeV, |eta|)")
    ptmin += 0; ptmax += 0; etamax += 0; gev = 1.0
    generated = 0; kept = 0; n_lines = 0; keep = 0; seen_header = 0; seen_end = 0
}
/^[[:space:]]*$/ { next }                     # blank lines carry nothing
/^HepMC::Version/ { print; next }
/^HepMC::IO_GenEvent-START_EVENT_LISTING/ { seen_header = 1; print; next }
/^HepMC::IO_GenEvent-END_EVENT_LISTING/ { flush(); seen_end = 1; print; next }
/^HepMC::/ { fail("line " NR ": " $0 " is not HepMC2 IO_GenEvent (write HepMC2, not HepMC3)") }
/^E / { if (!seen_header) fail("line " NR ": event before the START_EVENT_LISTING header"); flush() }
n_lines == 0 && !/^E / { fail("line " NR ": record outside an event: " substr($0, 1, 40)) }
{ lines[++n_lines] = $0 }
/^U / { gev = ($2 == "MEV") ? 0.001 : 1.0 }
/^P / && ($3 == 13 || $3 == -13) && $9 == 1 && !keep {
    px = $4 * gev; py = $5 * gev; pz = $6 * gev
    pt = sqrt(px * px + py * py)
    if (pt >= ptmin && pt <= ptmax) {
        r = pz / pt
        eta = log(r + sqrt(1.0 + r * r))      # asinh(pz / pT)
        if (eta < etamax && eta > -etamax) keep = 1
    }
}
END {
    if (failed) exit 3
    if (!seen_header) fail("no HepMC2 START_EVENT_LISTING line: empty or not HepMC2 input")
    if (!seen_end) fail("no END_EVENT_LISTING line after " generated " events: the input is truncated (did the shower crash?)")
    if (counts != "") printf "{\"backend\": \"container\", \"generation\": {\"generated\": %d, \"kept\": %d}}\n", generated, kept > counts
    printf "muon_filter.awk: kept %d of %d events (pT in [%g, %g] GeV, |eta| < %g)\n", kept, generated, ptmin, ptmax, etamax > "/dev/stderr"
}
