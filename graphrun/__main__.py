"""``python -m graphrun``."""

from __future__ import annotations

import sys

from graphrun.cli import main

sys.exit(main())
