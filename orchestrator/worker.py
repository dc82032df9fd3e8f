"""The worker: builds the components from Settings and runs them in a fixed order.

Startup: open the SQS and AmplifyBackend clients → resolve the DLQ → open the ledger → start
the HTTP endpoints, the job tracker, the lease renewals → start consuming. Shutdown (``stop``
set, e.g. by SIGTERM): stop receiving → let requests in progress finish within the grace period
→ release the rest → flush deletes → stop the tracker, the lease renewals and the endpoints →
close the ledger and the clients (reverse order of opening).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import uuid
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from orchestrator import __version__, logs, monitor
from orchestrator.amplify import AmplifyApi
from orchestrator.aws import open_clients
from orchestrator.consumer import Consumer, ConsumerSettings
from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import ConfigurationError
from orchestrator.httpserver import ObservabilityServer
from orchestrator.lease import Leases
from orchestrator.ledger import open_ledger
from orchestrator.metrics import Metrics
from orchestrator.processor import Destinations, RequestProcessor
from orchestrator.ratelimit import AdaptiveRateLimiter
from orchestrator.settings import Settings
from orchestrator.sqs import Sqs
from orchestrator.tracker import JobTracker

log = logs.get_logger("orchestrator.worker")


@dataclass(frozen=True)
class Started:
    """What a caller of ``Worker.run`` learns once the worker is consuming."""

    metrics_port: int | None
    dlq_url: str


class Worker:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.metrics.build_info.info({"version": __version__})
        self.consumer: Consumer | None = None
        self.tracker: JobTracker | None = None
        self.limiter = AdaptiveRateLimiter(settings.limiter())
        #: Names this process in ledger leases.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def readiness(self) -> tuple[bool, str]:
        consumer = self.consumer
        if consumer is None or not consumer.receiving:
            return False, "consumer not running"
        if not consumer.sqs_ok:
            return False, "SQS not reachable"
        return True, "ready"

    async def run(
        self, stop: anyio.Event, *, task_status: TaskStatus[Started] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        s = self.settings
        async with contextlib.AsyncExitStack() as stack:
            sqs_c, amp_c = await stack.enter_async_context(
                open_clients(max_connections=max(16, s.concurrency * 2))
            )
            sqs = Sqs(sqs_c, self.metrics)
            dlq_url = s.dlq_url or await sqs.dead_letter_url(s.queue_url)
            if not dlq_url:
                raise ConfigurationError(
                    "no dead-letter queue: set ORCHESTRATOR_DLQ_URL or give the queue a "
                    "RedrivePolicy"
                )
            ledger = await stack.enter_async_context(open_ledger(s.ledger))
            policy = s.retry_policy()
            api = AmplifyApi(amp_c, self.limiter, policy, self.metrics)
            self.tracker = JobTracker(api, self.metrics, s.tracker())
            leases = Leases(ledger, self.worker_id, s.lease_ttl)
            dispatcher = Dispatcher(
                api, self.tracker, ledger, leases, policy, s.dispatch(), metrics=self.metrics
            )
            destinations = Destinations(s.results_queue_url, dlq_url, s.allow_destructive)
            processor = RequestProcessor(sqs, dispatcher, destinations, self.metrics, policy)
            self.consumer = Consumer(
                sqs, processor.process, self._consumer_settings(), self.metrics
            )
            async with anyio.create_task_group() as services:
                port = await self._start_http(services)
                await services.start(self.tracker.run)
                await services.start(leases.run)
                services.start_soon(monitor.watch_loop_lag, self.metrics)
                depth_queues = {"main": s.queue_url, "dlq": dlq_url}
                services.start_soon(monitor.sample_queue_depth, sqs, self.metrics, depth_queues)
                log.info(
                    "worker_started",
                    queue_url=s.queue_url,
                    dlq_url=dlq_url,
                    metrics_port=port,
                    concurrency=s.concurrency,
                )
                task_status.started(Started(port, dlq_url))
                await self.consumer.run(stop)
                services.cancel_scope.cancel()
        log.info("worker_stopped")

    async def _start_http(self, services: anyio.abc.TaskGroup) -> int | None:
        if self.settings.metrics_port is None:
            return None
        server = ObservabilityServer(
            self.metrics.registry,
            self.readiness,
            self.settings.metrics_host,
            self.settings.metrics_port,
        )
        port: int = await services.start(server.run)
        return port

    def _consumer_settings(self) -> ConsumerSettings:
        s = self.settings
        return ConsumerSettings(
            queue_url=s.queue_url,
            concurrency=s.concurrency,
            visibility_timeout=s.visibility_timeout,
            wait_time_seconds=s.wait_time_seconds,
            shutdown_grace=s.shutdown_grace,
            receivers=s.receivers,
            fair=s.app_fairness,
            backlog=s.fair_backlog,
        )


async def run_until_signalled(worker: Worker) -> None:
    """Run the worker; the first SIGTERM/SIGINT starts a graceful stop, a second forces it."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    if stop.is_set():
                        log.warning("forced_stop", signal=signal.Signals(signum).name)
                        tg.cancel_scope.cancel()
                        return
                    log.info("stopping", signal=signal.Signals(signum).name)
                    stop.set()

        tg.start_soon(watch_signals)
        await worker.run(stop)
        tg.cancel_scope.cancel()
