"""A small known world for the emulator tests, and minimal valid parameters per operation.

Parameters are generated from each operation's input shape (its required members, recursively,
enums taking their first value), then the identifying members are pointed at the world: the
seeded app and environment, the resources the setup steps create, the token and job they leave.
"""

from __future__ import annotations

from typing import Any

from botocore.model import Shape

from orchestrator import servicemodel

APP, ENV = "app1", "dev"
OTHER_APP = "app2"
RESOURCE = {"Auth": "auth1", "Storage": "storage1", "API": "api1"}
BUCKET = "bucket-storage1"


def minimal(shape: Shape) -> Any:
    """The smallest value botocore's validator accepts for ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        return {name: minimal(shape.members[name]) for name in shape.required_members}
    if kind == "list":
        return [minimal(shape.member)]
    if kind == "map":
        return {}
    if kind in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if kind in ("double", "float"):
        return 1.0
    if kind == "boolean":
        return False
    enum = shape.metadata.get("enum")
    return enum[0] if enum else "x"


def _category(operation: str) -> str | None:
    for suffix in ("APIModels", "API", "Auth", "Storage"):
        if operation.endswith(suffix):
            return "API" if suffix == "APIModels" else suffix
    return None


def params_for(operation: str, ids: dict[str, str]) -> dict[str, Any]:
    """Minimal valid parameters for ``operation`` acting on the world ``setup_steps`` built."""
    shape = servicemodel.operation_model(operation).input_shape
    params: dict[str, Any] = minimal(shape) if shape is not None else {}
    members = shape.members if shape is not None else {}
    category = _category(operation)
    overrides: dict[str, Any] = {
        "AppId": APP,
        "AppName": APP,
        "BackendEnvironmentName": ENV,
        "TargetEnvironmentName": "clone",
        "ResourceName": RESOURCE.get(category or "", "x"),
        "SessionId": ids.get("SessionId", "none"),
        "JobId": ids.get("JobId", "none"),
    }
    params.update({k: v for k, v in overrides.items() if k in params})
    if operation.startswith("Create") and category:
        params["ResourceName"] = f"new-{category.lower()}"
    if "ResourceName" in members and "ResourceName" not in params and category:
        params["ResourceName"] = RESOURCE[category]
    return params


def setup_steps() -> list[tuple[str, dict[str, Any]]]:
    """Calls (boto3 method, params) that create one resource of each kind and a token."""
    steps: list[tuple[str, dict[str, Any]]] = []
    for category, name in RESOURCE.items():
        operation = f"CreateBackend{category}"
        params = params_for(operation, {})
        params["ResourceName"] = name
        if category == "Storage":
            params["ResourceConfig"]["BucketName"] = BUCKET
        steps.append((servicemodel.method_name(operation), params))
    steps.append(("create_token", {"AppId": APP}))
    return steps


def remember(ids: dict[str, str], response: dict[str, Any]) -> None:
    """Keep the first JobId and the SessionId a setup step returned."""
    if "JobId" in response:
        ids.setdefault("JobId", response["JobId"])
    if "SessionId" in response:
        ids["SessionId"] = response["SessionId"]
