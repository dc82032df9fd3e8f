"""Scenario 8, tracing cost: scenario 5's worker measurement (``orchestrator run``'s CPU per
change request, read from /proc) with OpenTelemetry tracing off and on, in the same run
against the same emulator and moto.

Rounds (5; --quick: 2) alternate the order (off, on / on, off ...). On:
``OTEL_EXPORTER_OTLP_ENDPOINT`` at a real OTLP/HTTP receiver in this process
(orchestrator/testing/otlp.py, which decodes every span) and the SDK's defaults otherwise: every
request sampled, BatchSpanProcessor every 5 s. The CPU of
an "on" round is read only once the receiver holds every request's CONSUMER span, so the
export of the last batch is counted too (it also proves no span was dropped). Target: on ≤ 1.10
× off per request.
"""

from __future__ import annotations

import tempfile
from typing import Any

from bench.harness.measure import median
from bench.harness.processes import EmulatorProcess, moto
from bench.scenarios import overhead


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    from orchestrator.spans import queue_name
    from orchestrator.testing import sqs_client
    from orchestrator.testing.otlp import otlp_receiver

    count, rounds = (300, 2) if quick else (1000, 5)
    bodies = overhead.prepare(emulator, count)
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    spans = 0
    with moto(), tempfile.TemporaryDirectory() as workdir:
        async with sqs_client() as sqs, otlp_receiver() as receiver:

            async def exported(queue_url: str) -> None:
                name = f"process {queue_name(queue_url)}"
                await receiver.wait_for(
                    lambda got: sum(1 for s in got if s.name == name) >= count, deadline=120
                )

            for round_ in range(rounds):
                for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                    on = mode == "on"
                    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint} if on else {}
                    measured = await overhead.worker_round(
                        sqs, bodies, workdir, emulator, env=env, settled=exported if on else None
                    )
                    assert measured["succeeded"] == count, measured
                    cpu[mode].append(measured["cpu_s"])
            spans = len(receiver.spans)

    def ms(values: list[float]) -> float:
        return round(1000 * median(values) / count, 3)

    # Each round's two runs are adjacent in time (the same load on a shared machine): the
    # median of the per-round ratios is the paired estimate, the ratio of medians the plain one.
    ratios = [on / off for on, off in zip(cpu["on"], cpu["off"], strict=True)]
    return {
        "requests": count,
        "rounds": rounds,
        "off_cpu_ms_per_request": ms(cpu["off"]),
        "on_cpu_ms_per_request": ms(cpu["on"]),
        "off_cpu_ms_rounds": [round(1000 * c / count, 2) for c in cpu["off"]],
        "on_cpu_ms_rounds": [round(1000 * c / count, 2) for c in cpu["on"]],
        "ratio": round(median(cpu["on"]) / median(cpu["off"]), 3),
        "paired_ratio": round(median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "spans_per_request": round(spans / (count * rounds), 2),
    }
