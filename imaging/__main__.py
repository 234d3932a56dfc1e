"""`python -m imaging ...`: see imaging.cli."""
import sys

from .cli import main

sys.exit(main())
