"""Entry point: `python -m simulation.container --help`."""
import sys

from simulation.container.cli import main

sys.exit(main())
