"""``python -m gptlib``: the course's command line (see ``gptlib.cli``)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
