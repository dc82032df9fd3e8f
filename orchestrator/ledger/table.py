"""The ledger's DynamoDB table definition (:mod:`orchestrator.ledger.dynamodb` describes the
items). Created by an operator (``orchestrator init-ledger``) or by
``deploy/cloudformation/queues.yaml``, never by the worker: its role has no CreateTable."""

from __future__ import annotations

from typing import Any

STATUS_INDEX = "by_status"


async def create_table(client: Any, table: str) -> None:
    """Create the ledger table (on-demand capacity) and wait until it is active."""
    await client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    waiter = client.get_waiter("table_exists")
    await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    await client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
