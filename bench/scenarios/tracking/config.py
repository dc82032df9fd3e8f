"""What scenario 4 runs under: sizes and the time scale, the variants (emulator knobs), and
the worker's tracker settings scaled."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.harness.contenders import worker_settings
from orchestrator.tracker import TrackerSettings
from orchestrator.worker import tracker_settings as worker_tracker_settings

SCALE = 10.0
CLI_POLL = 2.0
JOB_DURATION = (30.0, 120.0)
JOB_LIMIT = 600.0  # seconds (unscaled) after which a job counts as never noticed
PAGE_SIZE = 25
APP = "track"
OPERATION = "CreateBackendStorage"
HISTORIES = (0, 500)
ORDERS = ("newest", "oldest")
CONTENDERS = ("ours", "getbackendjob_every_2s", "list_sweep")
#: Words naming a float field that is not a duration (a ratio, a factor): left unscaled.
_DIMENSIONLESS = ("factor", "ratio", "fraction", "share", "slack")


@dataclasses.dataclass(frozen=True)
class Variant:
    """Emulator settings every contender runs under: past jobs per environment, list order."""

    history: int
    order: str

    @property
    def name(self) -> str:
        """The variant's key in the results (``history500_oldest``)."""
        return f"history{self.history}_{self.order}"

    def knobs(self) -> dict[str, Any]:
        """The emulator knobs of this variant."""
        return {"history": self.history, "list_order": self.order}


VARIANTS = tuple(Variant(h, o) for o in ORDERS for h in HISTORIES)


# --- time ----------------------------------------------------------------------------------


def _is_duration(spec: dataclasses.Field[Any]) -> bool:
    """A float field whose name does not say it is a ratio or a factor."""
    typed = spec.type in (float, "float", "float | None")
    return typed and not any(word in spec.name for word in _DIMENSIONLESS)


def tracker_settings() -> TrackerSettings:
    """The worker's tracker settings with every duration field divided by ``SCALE``."""
    settings = worker_tracker_settings(worker_settings())
    scaled: dict[str, Any] = {
        spec.name: value / SCALE
        for spec in dataclasses.fields(settings)
        if _is_duration(spec) and isinstance(value := getattr(settings, spec.name), int | float)
    }
    return dataclasses.replace(settings, **scaled)


def sweep_max() -> float:
    """The worker's ``sweep_max``, scaled: the plain sweep's period and the detection bound."""
    return worker_settings().sweep_max / SCALE
