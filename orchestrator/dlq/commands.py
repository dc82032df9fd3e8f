"""The commands as the CLI runs them: each opens one SQS client, resolves the queues, runs
:mod:`.report`, :mod:`.redrive` or :mod:`.purge`, prints the result and returns the exit
status (1 when a redrive or purge left failures)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TextIO

from orchestrator.aws import open_clients
from orchestrator.dlq.context import Context, QueueUrls
from orchestrator.dlq.filters import Filters
from orchestrator.dlq.purge import Purge, purge
from orchestrator.dlq.queues import require_queue, resolve_dlq, resolve_target
from orchestrator.dlq.redrive import Redrive, redrive
from orchestrator.dlq.report import ls, message_json, render_message, render_report, show
from orchestrator.dlq.summary import render_summary
from orchestrator.errors import ConfigurationError


async def ls_command(urls: QueueUrls, ctx: Context, out: TextIO, *, sample: int) -> int:
    async with _sqs(urls) as client:
        report = await ls(client, await resolve_dlq(client, urls), ctx, sample=sample)
    print(render_report(report, ctx.now()), file=out)
    return 0


async def show_command(
    urls: QueueUrls, ctx: Context, out: TextIO, *, limit: int, as_json: bool
) -> int:
    async with _sqs(urls) as client:
        messages = await show(client, await resolve_dlq(client, urls), ctx, limit=limit)
    for message in messages:
        print(message_json(message) if as_json else render_message(message, ctx.now()), file=out)
    if not messages and not as_json:
        print("no messages (the DLQ is empty, or every message is in flight)", file=out)
    return 0


async def redrive_command(
    urls: QueueUrls,
    ctx: Context,
    out: TextIO,
    *,
    to: str | None,
    filters: Filters,
    dry_run: bool,
    rate: float | None,
    limit: int | None,
) -> int:
    async with _sqs(urls) as client:
        dlq_url = await resolve_dlq(client, urls)
        target = await resolve_target(client, dlq_url, to, urls)
        plan = Redrive(dlq_url, target, filters, dry_run, rate, limit)
        summary = await redrive(client, plan, ctx, lambda line: print(line, file=out))
    print(render_summary("redrive", dlq_url, summary, target), file=out)
    return 0 if summary.ok else 1


async def purge_command(
    urls: QueueUrls,
    ctx: Context,
    out: TextIO,
    *,
    older_than: float | None,
    everything: bool,
    yes: bool,
    dry_run: bool,
) -> int:
    if everything == (older_than is not None):
        raise ConfigurationError("purge needs exactly one of --older-than DURATION and --all")
    if everything and not (yes or dry_run):
        raise ConfigurationError("--all deletes every message on the DLQ: add --yes")
    async with _sqs(urls) as client:
        plan = Purge(await resolve_dlq(client, urls), older_than, dry_run)
        summary = await purge(client, plan, ctx, lambda line: print(line, file=out))
    print(render_summary("purge", plan.dlq_url, summary), file=out)
    return 0 if summary.ok else 1


@contextlib.asynccontextmanager
async def _sqs(urls: QueueUrls) -> AsyncIterator[Any]:
    require_queue(urls)
    async with open_clients(max_connections=4) as (sqs, _):
        yield sqs
