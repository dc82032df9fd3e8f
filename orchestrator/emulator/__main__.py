"""``python -m orchestrator.emulator``: the emulator as a standalone server."""

from __future__ import annotations

import sys

from orchestrator.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
