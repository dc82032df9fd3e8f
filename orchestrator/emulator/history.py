"""History: finished jobs an environment already has when the emulator starts serving it.

A real account's environments have past jobs, so a worker listing jobs must skip them; with
``history = N`` every environment seeded from ``apps`` (at start, at reset, when ``apps``
gains environments at runtime) and every one ``auto_create`` makes gets N terminal jobs:
spread over the N minutes before it was seeded (one a minute, oldest first, a random offset
within the minute), each a few seconds long, about one in five FAILED, the operation cycling
over :data:`OPERATIONS` (so an Operation filter has many to skip). They change no state, are
never active (no conflicts), count in ``jobs.history`` and not in ``jobs.created`` or
``mutations``. Each environment draws from its own RNG seeded by ``seed`` and its name, so
history is reproducible and leaves the main RNG (faults, job ids) as it would be without it.
"""

from __future__ import annotations

import random
import uuid

from orchestrator.emulator.jobs import COMPLETED, FAILED, EnvKey, Finished

OPERATIONS = (
    "CreateBackendAuth",
    "CreateBackendStorage",
    "CreateBackendAPI",
    "UpdateBackendAuth",
    "UpdateBackendStorage",
    "UpdateBackendAPI",
    "GenerateBackendAPIModels",
)
SPACING = 60.0  # seconds between the starts of two history jobs
DURATION = (2.0, 8.0)  # seconds a history job took
FAILED_SHARE = 0.2


def _resource(operation: str) -> str:
    category = operation.removeprefix("Create").removeprefix("Update").removeprefix("Generate")
    return "history-" + category.removeprefix("Backend").removesuffix("Models").lower()


def finished_jobs(key: EnvKey, count: int, seed: int | None, now: float) -> list[Finished]:
    """``count`` terminal jobs of ``key`` that ended before the monotonic instant ``now``."""
    rng = random.Random(f"history:{seed}:{key[0]}/{key[1]}" if seed is not None else None)
    jobs = []
    for index in range(count):
        operation = OPERATIONS[index % len(OPERATIONS)]
        created = now - (count - index) * SPACING + rng.uniform(0.0, SPACING / 2)
        updated = created + rng.uniform(*DURATION)
        failed = rng.random() < FAILED_SHARE
        params = {"AppId": key[0], "BackendEnvironmentName": key[1]}
        params["ResourceName"] = _resource(operation)
        jobs.append(
            Finished(
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                operation,
                params,
                created,
                updated,
                FAILED if failed else COMPLETED,
                f"{operation} failed (history, before the emulator served it)" if failed else None,
            )
        )
    return jobs
