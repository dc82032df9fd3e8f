"""The job ledger in DynamoDB: one table shared by every replica, conditional writes throughout.

Table layout (:func:`orchestrator.ledger.table.create_table`, run by ``orchestrator
init-ledger``, and ``deploy/cloudformation/queues.yaml`` create it):

* hash key ``pk`` (S); TTL attribute ``expires_at`` (N, epoch seconds);
* a request: ``pk = "request#<request_id>"`` with ``status``, ``updated_at``, ``record`` (the
  JSON :class:`~orchestrator.ledger.LedgerRecord`) and ``version`` (N). Every write is
  conditioned on the version the record object last read or wrote (``LedgerRecord.version``:
  it travels with the record, so nothing per request stays behind in the process), so a
  worker that lost its lease (paused,
  partitioned) can never overwrite the progress of the replica that took over: its write fails
  with :class:`LedgerConflict` and the message is retried later. Finished requests expire after
  ``retention`` seconds (the window in which a redelivered request is recognised);
* a lease: ``pk = "lease#<key>"`` with ``owner`` and ``expires_at``, taken with a condition
  (free, expired, or already ours). Expiry compares wall clocks across replicas: keep them in
  NTP sync (skew far below the lease TTL);
* a tag: ``pk = "tag#<key>"`` with ``value`` (``job:<JobId>`` → the step owning the job, put
  only if absent; ``env:<AppId>/<env>`` → the step that last mutated the environment), expiring
  after ``retention`` like finished requests;
* global secondary index ``by_status`` (hash ``status``, range ``updated_at``) for
  ``orchestrator requests --status``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.clock import wall_time
from orchestrator.errors import ConfigurationError, LedgerConflict, LedgerUnavailable
from orchestrator.ledger.record import IN_PROGRESS, REJECTED, LedgerRecord
from orchestrator.ledger.table import STATUS_INDEX

_CONFLICT = "ConditionalCheckFailedException"
_STATUSES = (IN_PROGRESS, "SUCCEEDED", "FAILED", REJECTED)


class DynamoLedger:
    def __init__(
        self,
        client: Any,
        table: str,
        *,
        retention: float = 14 * 86400,
        clock: Callable[[], float] = wall_time,
    ) -> None:
        self._db = client
        self._table = table
        self._retention = retention
        self._clock = clock

    async def _call(self, operation: str, **params: Any) -> Any:
        try:
            return await getattr(self._db, operation)(TableName=self._table, **params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONFLICT:
                raise
            raise LedgerUnavailable(f"ledger {operation} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise LedgerUnavailable(f"ledger {operation} failed: {exc}") from exc

    async def begin(self, request_id: str, operations: list[str]) -> LedgerRecord:
        record = LedgerRecord.begun(request_id, operations, await self.get(request_id))
        await self.save(record)
        return record

    async def save(self, record: LedgerRecord) -> None:
        record.updated_at = self._clock()
        expected = record.version
        item = {
            "pk": {"S": _request_key(record.request_id)},
            "status": {"S": record.status},
            "updated_at": {"N": repr(record.updated_at)},
            "record": {"S": record.to_json()},
            "version": {"N": str((expected or 0) + 1)},
        }
        if record.status != IN_PROGRESS:
            item["expires_at"] = {"N": str(int(record.updated_at + self._retention))}
        if expected is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
            }
        try:
            await self._call("put_item", Item=item, **condition)
        except ClientError as exc:
            raise LedgerConflict(
                f"request {record.request_id} was changed by another worker"
            ) from exc
        record.version = (expected or 0) + 1

    async def get(self, request_id: str) -> LedgerRecord | None:
        item = await self._item(request_id)
        if item is None:
            return None
        return LedgerRecord.from_json(item["record"]["S"], int(item["version"]["N"]))

    async def peek(self, request_id: str) -> LedgerRecord | None:
        # The same read: the version travels with the record object, so reading another
        # request's record can never condition this process's save of its own copy.
        return await self.get(request_id)

    async def _item(self, request_id: str) -> dict[str, Any] | None:
        response = await self._call(
            "get_item", Key={"pk": {"S": _request_key(request_id)}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def find(self, status: str | None, limit: int) -> list[LedgerRecord]:
        records: list[LedgerRecord] = []
        for wanted in [status] if status else _STATUSES:
            response = await self._call(
                "query",
                IndexName=STATUS_INDEX,
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": wanted}},
                ScanIndexForward=False,
                Limit=limit,
            )
            records += [LedgerRecord.from_json(i["record"]["S"]) for i in response["Items"]]
        return sorted(records, key=lambda r: r.updated_at, reverse=True)[:limit]

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        now = self._clock()
        try:
            await self._call(
                "put_item",
                Item={
                    "pk": {"S": _lease_key(key)},
                    "owner": {"S": owner},
                    "expires_at": {"N": repr(now + ttl)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #o = :o OR expires_at < :now",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": owner}, ":now": {"N": repr(now)}},
            )
        except ClientError:
            return False
        return True

    async def release_lease(self, key: str, owner: str) -> None:
        with contextlib.suppress(ClientError):  # already expired and taken by another owner
            await self._call(
                "delete_item",
                Key={"pk": {"S": _lease_key(key)}},
                ConditionExpression="#o = :o",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": owner}},
            )

    async def put_tag(self, key: str, value: str, *, only_new: bool = False) -> str:
        item = {
            "pk": {"S": _tag_key(key)},
            "value": {"S": value},
            "expires_at": {"N": str(int(self._clock() + self._retention))},
        }
        condition = {"ConditionExpression": "attribute_not_exists(pk)"} if only_new else {}
        try:
            await self._call("put_item", Item=item, **condition)
        except ClientError:  # only_new, and the key has a value: that one stands
            stored = await self.get_tag(key)
            return value if stored is None else stored
        return value

    async def get_tag(self, key: str) -> str | None:
        response = await self._call(
            "get_item", Key={"pk": {"S": _tag_key(key)}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else str(item["value"]["S"])

    async def close(self) -> None:
        """The client belongs to :func:`open_dynamodb_ledger`, which closes it."""


def _request_key(request_id: str) -> str:
    return f"request#{request_id}"


def _lease_key(key: str) -> str:
    return f"lease#{key}"


def _tag_key(key: str) -> str:
    return f"tag#{key}"


@contextlib.asynccontextmanager
async def open_dynamodb_ledger(table: str) -> AsyncIterator[DynamoLedger]:
    """A ledger on an existing table (endpoint, region and credentials from AWS's own chain)."""
    config = AioConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)
    async with get_session().create_client("dynamodb", config=config) as client:
        try:
            await client.describe_table(TableName=table)
        except ClientError as exc:
            raise ConfigurationError(
                f"ledger table {table!r} is not usable ({exc}); create it with "
                "`orchestrator init-ledger` or deploy/cloudformation/queues.yaml"
            ) from exc
        yield DynamoLedger(client, table)
