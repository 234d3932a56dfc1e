"""Container backend of the simulation: MadGraph5_aMC@NLO -> Pythia 8 -> Delphes in an image.

This subpackage renders the files the container rules run (MG5 command files, Pythia shower
cards, the per-chunk Delphes card) and ships the small scripts those rules call
(gridpack_events.sh, shower_to_delphes.sh, muon_filter.awk). Rendering needs only the
standard library; `shower`, the MG5aMC_PY8_interface equivalent, needs pythia8mc + pyhepmc.
CLI: ``python -m simulation.container --help``.
"""
