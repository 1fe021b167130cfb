"""``python -m bertkit …``: the same command line as ``bertkit …`` (and what
``torchrun -m bertkit pretrain …`` starts in every process)."""

import sys

from bertkit.cli import main

sys.exit(main())
