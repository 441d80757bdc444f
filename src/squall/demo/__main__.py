"""``python -m squall.demo``: the same as ``squall demo``."""

import sys

from squall.demo.run import main

sys.exit(main())
