"""``python -m theory`` is the ``theory`` command."""

import sys

from .cli import main

sys.exit(main())
