"""``python -m spectramind.shim [--bundle DIR] [--] [COMMAND...]``."""

import sys

from .main import main

sys.exit(main())
