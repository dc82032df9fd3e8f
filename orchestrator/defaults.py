"""The worker's defaults, in one place: :class:`orchestrator.settings.Settings` (the edge) and
each component's own settings (ConsumerSettings, TrackerSettings, ...) read them from here, so
a component built without the edge behaves as ``orchestrator run`` does with nothing set.

Imports nothing: every module may use it.
"""

from __future__ import annotations

# receiving (orchestrator.consumer)
CONCURRENCY = 32
VISIBILITY_TIMEOUT = 60
WAIT_TIME_SECONDS = 20
SHUTDOWN_GRACE = 30.0
RECEIVERS = 4
FAIR_BACKLOG = 2000
APP_FAIRNESS = True

# calls (orchestrator.backoff, orchestrator.ratelimit)
MAX_ATTEMPTS = 8
BACKOFF_BASE = 0.1
BACKOFF_CAP = 20.0
INITIAL_RATE = 10.0
MAX_RATE = 1000.0

# jobs (orchestrator.tracker, orchestrator.reconcile, orchestrator.dispatcher)
JOB_TIMEOUT = 3600.0
SWEEP_MIN = 1.0
SWEEP_MAX = 30.0
LIST_GRACE = 60.0
LIST_PAGE_SIZE = 25
CLOCK_SKEW = 2.0

# the ledger (orchestrator.ledger)
LEDGER = "sqlite:///orchestrator-ledger.db"
LEASE_TTL = 30.0
