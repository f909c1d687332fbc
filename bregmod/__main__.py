"""``python -m bregmod``: the command line (:mod:`bregmod.cli`)."""

import sys

from bregmod.cli import main

sys.exit(main())
