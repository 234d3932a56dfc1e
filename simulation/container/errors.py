"""The container backend's exception: a card or input that cannot work, with the fix."""
from __future__ import annotations

from simulation.errors import SimulationError


class ContainerCardError(SimulationError):
    """A MadGraph/Pythia/Delphes card or LHE input is missing, malformed or inconsistent."""
