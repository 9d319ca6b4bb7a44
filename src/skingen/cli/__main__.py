"""``python -m skingen.cli``."""

import sys

from skingen.cli import main

sys.exit(main())
