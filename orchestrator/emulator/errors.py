"""The errors an emulated call can answer with, shaped as the service model declares them.

An :class:`ApiError` carries an error code and its members by their model (API) names; the
protocol layer turns it into the status from ``servicemodel.error_status(code)``, the
``x-amzn-ErrorType`` header and a JSON body keyed by the error shape's wire names (so
``LimitType`` goes out as ``limitType`` and botocore parses it back). Codes the model does not
declare (InternalServiceException, the signature errors) get their status here.
"""

from __future__ import annotations

from typing import Any

from orchestrator import servicemodel

BAD_REQUEST = "BadRequestException"
NOT_FOUND = "NotFoundException"
TOO_MANY_REQUESTS = "TooManyRequestsException"
GATEWAY_TIMEOUT = "GatewayTimeoutException"
INTERNAL = "InternalServiceException"
MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
_UNDECLARED_STATUS = {INTERNAL: 500, MISSING_TOKEN: 403, INCOMPLETE_SIGNATURE: 403}


class ApiError(Exception):
    """An error answer: ``code`` plus error-shape members (``Message`` and friends)."""

    def __init__(self, code: str, message: str, **members: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.members: dict[str, Any] = {"Message": message, **members}
        self.status = _UNDECLARED_STATUS.get(code) or servicemodel.error_status(code)


def bad_request(message: str) -> ApiError:
    return ApiError(BAD_REQUEST, message)


def not_found(resource_type: str, message: str) -> ApiError:
    return ApiError(NOT_FOUND, message, ResourceType=resource_type)


def throttled(limit_type: str) -> ApiError:
    message = f"Rate exceeded ({limit_type} limit)"
    return ApiError(TOO_MANY_REQUESTS, message, LimitType=limit_type)


def gateway_timeout() -> ApiError:
    return ApiError(GATEWAY_TIMEOUT, "Gateway timeout (injected fault)")


def internal_error() -> ApiError:
    return ApiError(INTERNAL, "Internal service error after the request took effect (injected)")
