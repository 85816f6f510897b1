"""``python -m daemon``: the trading daemon (daemon/main.py)."""

import sys

from daemon.main import main

sys.exit(main())
