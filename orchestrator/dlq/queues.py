"""The queues a command works on: which DLQ and which redrive target (resolved from the
configured URLs, a RedrivePolicy or the DLQ's source queues), their attributes
(:class:`QueueInfo`), and :func:`call`, the one way this package calls SQS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.aws import map_error
from orchestrator.dlq.context import QueueUrls
from orchestrator.errors import ConfigurationError
from orchestrator.metrics import Metrics
from orchestrator.sqs import Sqs


@dataclass(frozen=True)
class QueueInfo:
    url: str
    arn: str
    fifo: bool
    visible: int
    in_flight: int
    delayed: int


async def call(client: Any, method: str, **params: Any) -> dict[str, Any]:
    """One SQS call; its errors mapped to :mod:`orchestrator.errors`."""
    try:
        response: dict[str, Any] = await getattr(client, method)(**params)
    except Exception as exc:  # mapped at the boundary; unknown types re-raise
        raise map_error(exc) from exc
    return response


async def queue_info(client: Any, url: str) -> QueueInfo:
    names = [
        "QueueArn",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    found = await call(client, "get_queue_attributes", QueueUrl=url, AttributeNames=names)
    attributes = found.get("Attributes", {})
    return QueueInfo(
        url=url,
        arn=str(attributes["QueueArn"]),
        fifo=url.endswith(".fifo"),
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def require_queue(urls: QueueUrls) -> None:
    """Refuse, before any call, a command that names no queue at all."""
    if not (urls.dlq or urls.change):
        raise ConfigurationError(
            "which DLQ? set --dlq-url (ORCHESTRATOR_DLQ_URL), or --queue-url "
            "(ORCHESTRATOR_QUEUE_URL) of a queue with a RedrivePolicy"
        )


async def resolve_dlq(client: Any, urls: QueueUrls) -> str:
    """``--dlq-url``, else the DLQ named by the change queue's RedrivePolicy."""
    require_queue(urls)
    if urls.dlq:
        return urls.dlq
    change = str(urls.change)  # require_queue: one of the two is set
    found = await Sqs(client, Metrics()).dead_letter_url(change)
    if not found:
        raise ConfigurationError(
            f"{urls.change} has no RedrivePolicy: set --dlq-url (ORCHESTRATOR_DLQ_URL)"
        )
    return found


async def resolve_target(client: Any, dlq_url: str, to: str | None, urls: QueueUrls) -> str:
    """``--to``, else the change queue, else the one queue whose DLQ this is."""
    if to or urls.change:
        return str(to or urls.change)
    listed = await call(client, "list_dead_letter_source_queues", QueueUrl=dlq_url)
    sources = listed.get("queueUrls", [])
    if len(sources) != 1:
        raise ConfigurationError(
            f"redrive where? {dlq_url} is the DLQ of {len(sources)} queue(s): set --to URL or "
            "--queue-url (ORCHESTRATOR_QUEUE_URL)"
        )
    return str(sources[0])
