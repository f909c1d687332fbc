"""``python -m bregmod``: the ``bregmod`` command line (:func:`bregmod.cli.main`)."""

import sys

from bregmod.cli import main

if __name__ == "__main__":
    sys.exit(main())
