"""The AWS boundary: client construction and the mapping of botocore errors to our tree.

Clients are built from an aiobotocore session, so credentials, region and endpoints come from
AWS's own mechanisms (credential chain, ``AWS_REGION``, ``AWS_ENDPOINT_URL_SQS``,
``AWS_ENDPOINT_URL_AMPLIFYBACKEND``). The AmplifyBackend client has botocore's retries off:
the orchestrator retries under its own adaptive rate limiter instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from orchestrator import servicemodel
from orchestrator.errors import (
    ApiRejected,
    ConnectionFailure,
    OrchestratorError,
    ServerError,
    Throttled,
)

_NOT_SENT = (EndpointConnectionError, ConnectTimeoutError)
_MAYBE_SENT = (ConnectionClosedError, ReadTimeoutError, aiohttp.ClientError)
#: Set on a botocore exception by the client that raised it: the service it could not reach.
_SERVICE_ATTRIBUTE = "orchestrator_service"


def map_error(exc: Exception, secrets: frozenset[str] = frozenset()) -> OrchestratorError:
    """Translate a botocore/aiohttp exception into the orchestrator's error tree."""
    if isinstance(exc, ClientError):
        return _map_client_error(exc, secrets)
    if isinstance(exc, _NOT_SENT):
        service = getattr(exc, _SERVICE_ATTRIBUTE, None) or "the service"
        return ConnectionFailure(f"cannot reach {service}: {exc}")
    if isinstance(exc, _MAYBE_SENT):
        return ConnectionFailure(f"connection lost: {exc}", ambiguous=True)
    raise exc


def _map_client_error(exc: ClientError, secrets: frozenset[str]) -> OrchestratorError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = servicemodel.scrub(f"{code}: {error.get('Message', '')}", secrets)
    if code == "TooManyRequestsException" or status == 429:
        return Throttled(message, code=code)
    if code == "GatewayTimeoutException" or status >= 500:
        return ServerError(message, code=code, ambiguous=True)
    return ApiRejected(message, code=code)


def _name_errors(client: Any) -> None:
    """Make the errors of ``client``'s calls name its service (SQS, AmplifyBackend): both
    clients fail with the same botocore connection errors, which name only a URL."""
    service_id = client.meta.service_model.service_id

    def tag(exception: BaseException, **_: Any) -> None:
        setattr(exception, _SERVICE_ATTRIBUTE, str(service_id))

    client.meta.events.register(f"after-call-error.{service_id.hyphenize()}", tag)


@contextlib.asynccontextmanager
async def open_clients(max_connections: int = 64) -> AsyncIterator[tuple[Any, Any]]:
    """One SQS and one AmplifyBackend client for the process, closed in reverse order."""
    session = get_session()
    sqs_config = AioConfig(
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max_connections,
        read_timeout=60,
    )
    amplify_config = AioConfig(
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=max_connections,
        connect_timeout=5,
        read_timeout=30,
    )
    async with contextlib.AsyncExitStack() as stack:
        sqs = await stack.enter_async_context(session.create_client("sqs", config=sqs_config))
        amplify = await stack.enter_async_context(
            session.create_client(servicemodel.SERVICE_NAME, config=amplify_config)
        )
        _name_errors(sqs)
        _name_errors(amplify)
        yield sqs, amplify
