"""``python -m orchestrator.cli``."""

from orchestrator.cli import main

raise SystemExit(main())
