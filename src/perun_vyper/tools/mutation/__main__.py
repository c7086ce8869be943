"""``python -m perun_vyper.tools.mutation``: see run.py."""

import sys

from .run import main

sys.exit(main())
