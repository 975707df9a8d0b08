"""``python -m netgear.cli``: the same as the ``netgear`` command."""

import sys

from . import main

if __name__ == "__main__":  # also keeps multiprocessing's spawn re-import from running it
    sys.exit(main())
