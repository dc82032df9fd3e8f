"""The local stack, as code: what the tests, the benchmarks, the chaos runs and the demo share.

Queues with a dead-letter queue and a results queue, clients of the local endpoints, a worker
running in this event loop, the emulator, and realistic change requests. Everything talks over
loopback HTTP; AWS endpoints are set the AWS way (``AWS_ENDPOINT_URL_SQS``,
``AWS_ENDPOINT_URL_AMPLIFYBACKEND``), exactly as in production. Never used by the worker
itself (its IAM analysis, tests/test_deploy.py, leaves this package out);
:mod:`orchestrator.testing.otlp` (an OTLP/HTTP receiver) needs the ``dev`` extra.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from orchestrator.amplify import AmplifyApi
from orchestrator.backoff import RetryPolicy
from orchestrator.emulator import EmulatorConfig, EmulatorHandle, run_emulator
from orchestrator.metrics import Metrics
from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings
from orchestrator.settings import Settings
from orchestrator.tracing import Tracing
from orchestrator.worker import Started, Worker

FAST = {
    "metrics_port": 0,
    "metrics_host": "127.0.0.1",
    "wait_time_seconds": 1,
    "visibility_timeout": 30,
    "shutdown_grace": 10.0,
    "job_timeout": 30.0,
    "sweep_min": 0.05,
    "sweep_max": 0.5,
    "list_grace": 2.0,  # the emulator lists new jobs at most 0.6 s late in any test
    "backoff_base": 0.05,
    "backoff_cap": 1.0,
    "initial_rate": 50.0,
}


@dataclass(frozen=True)
class Queues:
    main: str
    dlq: str
    results: str

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {**FAST, "ledger": "sqlite:///:memory:", **overrides}
        return Settings(queue_url=self.main, results_queue_url=self.results, **values)


async def create_queues(
    sqs: Any,
    *,
    max_receive_count: int = 5,
    visibility: int = 30,
    fifo: bool = False,
    prefix: str = "",
) -> Queues:
    """A change queue with a DLQ (redrive policy) and a results queue, randomly named
    (``<prefix>changes-<suffix>``, ``<prefix>dlq-...``, ``<prefix>results-...``)."""
    suffix = uuid.uuid4().hex[:10]
    kind = {"FifoQueue": "true"} if fifo else {}
    name = ".fifo" if fifo else ""
    dlq = (await sqs.create_queue(QueueName=f"{prefix}dlq-{suffix}{name}", Attributes=kind))[
        "QueueUrl"
    ]
    arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive_count)})
    main = (
        await sqs.create_queue(
            QueueName=f"{prefix}changes-{suffix}{name}",
            Attributes={"RedrivePolicy": policy, "VisibilityTimeout": str(visibility), **kind},
        )
    )["QueueUrl"]
    results = (await sqs.create_queue(QueueName=f"{prefix}results-{suffix}"))["QueueUrl"]
    return Queues(main, dlq, results)


@contextlib.asynccontextmanager
async def sqs_client() -> AsyncIterator[Any]:
    async with get_session().create_client("sqs") as client:
        yield client


@contextlib.asynccontextmanager
async def amplify_client() -> AsyncIterator[Any]:
    async with get_session().create_client("amplifybackend") as client:
        yield client


async def send(sqs: Any, queue_url: str, bodies: Iterable[Any]) -> None:
    entries = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
    for start in range(0, len(entries), 10):
        batch = [
            {"Id": str(i), "MessageBody": body}
            for i, body in enumerate(entries[start : start + 10])
        ]
        response = await sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
        assert not response.get("Failed"), response


async def drain(
    sqs: Any, queue_url: str, count: int, *, deadline: float = 60.0, attributes: bool = False
) -> list[dict[str, Any]]:
    """Receive (and delete) ``count`` messages, failing if they do not come within ``deadline``."""
    got: list[dict[str, Any]] = []
    with anyio.fail_after(deadline):
        while len(got) < count:
            response = await sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["MessageGroupId"],
            )
            for message in response.get("Messages", []):
                got.append(message if attributes else json.loads(message["Body"]))
                await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return got


async def drain_requests(
    sqs: Any, queue_url: str, request_ids: Iterable[str], *, deadline: float = 60.0
) -> dict[str, list[dict[str, Any]]]:
    """Receive (and delete) outcome events until every one of ``request_ids`` has one: each
    request's events, copies included (SQS delivers at least once, and a send whose answer
    was lost is sent again, so an identical event may come twice)."""
    wanted = set(request_ids)
    events: dict[str, list[dict[str, Any]]] = {}
    with anyio.fail_after(deadline):
        while not wanted <= events.keys():
            for event in await drain(sqs, queue_url, len(wanted - events.keys())):
                events.setdefault(str(event["request_id"]), []).append(event)
    return events


async def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    attributes = (
        await sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, tracing: Tracing | None = None
) -> AsyncIterator[tuple[Worker, Started]]:
    """Run a worker in this event loop; stop it (gracefully) when the block ends."""
    worker = Worker(settings, Metrics(), tracing=tracing)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        started: Started = await tg.start(worker.run, stop)
        try:
            yield worker, started
        finally:
            stop.set()


def with_settings(queues: Queues, **overrides: Any) -> Settings:
    return replace(queues.settings(), **overrides)


def auth_request(
    request_id: str, app: str, env: str, resource: str, **extra: Any
) -> dict[str, Any]:
    """A realistic CreateBackendAuth change request (Cognito user pool with Google sign-in)."""
    params = {
        "AppId": app,
        "BackendEnvironmentName": env,
        "ResourceName": resource,
        "ResourceConfig": {
            "AuthResources": "USER_POOL_ONLY",
            "Service": "COGNITO",
            "UserPoolConfigs": {
                "RequiredSignUpAttributes": ["EMAIL"],
                "SignInMethod": "EMAIL",
                "UserPoolName": f"{resource}-pool",
                "OAuth": {
                    "OAuthGrantType": "CODE",
                    "OAuthScopes": ["EMAIL", "OPENID"],
                    "RedirectSignInURIs": ["https://example.com/in"],
                    "RedirectSignOutURIs": ["https://example.com/out"],
                    "SocialProviderSettings": {
                        "Google": {"ClientId": "google-client", "ClientSecret": "s3cr3t-google"}
                    },
                },
            },
        },
    }
    return {"request_id": request_id, "operation": "CreateBackendAuth", "params": params, **extra}


def storage_request(request_id: str, app: str, env: str, resource: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "operation": "create_backend_storage",
        "params": {
            "AppId": app,
            "BackendEnvironmentName": env,
            "ResourceName": resource,
            "ResourceConfig": {
                "ServiceName": "S3",
                "Permissions": {"Authenticated": ["READ", "CREATE_AND_UPDATE"]},
            },
        },
    }


@contextlib.asynccontextmanager
async def emulated_api(
    metrics: Metrics | None = None, **knobs: Any
) -> AsyncIterator[tuple[EmulatorHandle, Any, AmplifyApi]]:
    """An emulator with ``knobs`` (app1/dev by default), a one-attempt aiobotocore client on it,
    and the worker's AmplifyApi over that client (fast retries, a high rate)."""
    config = EmulatorConfig(**{"apps": {"app1": ["dev"]}, "seed": 3, **knobs})
    async with (
        run_emulator(config) as emu,
        get_session().create_client(
            "amplifybackend",
            endpoint_url=emu.url,
            config=AioConfig(retries={"mode": "standard", "total_max_attempts": 1}),
        ) as client,
    ):
        limiter = AdaptiveRateLimiter(LimiterSettings(initial_rate=1000.0))
        policy = RetryPolicy(3, 0.01, 0.02)
        yield emu, client, AmplifyApi(client, limiter, policy, metrics or Metrics())


def multi_step(request_id: str, *bodies: dict[str, Any]) -> dict[str, Any]:
    """One change request whose steps are the single-step ``bodies``, in order."""
    steps = [{"operation": body["operation"], "params": body["params"]} for body in bodies]
    return {"request_id": request_id, "steps": steps}


async def wait_until(predicate: Any, *, deadline: float = 10.0, every: float = 0.01) -> None:
    """Poll ``predicate()`` until true, failing after ``deadline`` seconds."""
    with anyio.fail_after(deadline):
        # Polling is the only option here: the state lives in another server, behind HTTP.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(every)


async def stop_process(process: Any) -> None:
    """SIGTERM, up to 10 s to exit, then SIGKILL; the process's streams closed."""
    process.terminate()
    with anyio.move_on_after(10):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    await process.aclose()
