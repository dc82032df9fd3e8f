"""Operations answered on the spot: the reads, and the mutations that return no JobId.

Reads return what completed jobs left in state (GetBackendAuth after a completed
CreateBackendAuth returns its ResourceConfig and ResourceName). The immediate mutations
(CreateToken, DeleteToken, UpdateBackendConfig, RemoveBackendConfig) change state before
answering. Results use the model's API member names; the protocol layer serialises them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator.emulator.errors import not_found
from orchestrator.emulator.state import API, AUTH, STORAGE, BackendState, Environment

Params = dict[str, Any]
TOKEN_TTL_SECONDS = "600"
Handler = Callable[[BackendState, Params, random.Random], dict[str, Any]]


def _get_backend(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    app = state.app(p["AppId"])
    name = p.get("BackendEnvironmentName")
    env: Environment | None = app.env(name) if name else next(iter(app.envs.values()), None)
    return {
        "AppId": app.app_id,
        "AppName": app.app_name,
        "BackendEnvironmentList": list(app.envs),
        "BackendEnvironmentName": name,
        "AmplifyMetaConfig": json.dumps(_meta(env)) if env is not None else None,
        "AmplifyFeatureFlags": json.dumps({"features": {"emulated": True}}),
    }


def _meta(env: Environment) -> dict[str, Any]:
    return {
        category: {name: r.config for name, r in resources.items()}
        for category, resources in env.resources.items()
    }


def _get_resource(category: str) -> Handler:
    def handler(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
        resource = state.env(p["AppId"], p["BackendEnvironmentName"]).resource(
            category, p["ResourceName"]
        )
        config = dict(resource.config)
        if category == STORAGE:
            config["Imported"] = resource.imported
        return {
            "AppId": p["AppId"],
            "BackendEnvironmentName": p["BackendEnvironmentName"],
            "ResourceName": resource.name,
            "ResourceConfig": config,
        }

    return handler


def _get_models(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    env = state.env(p["AppId"], p["BackendEnvironmentName"])
    resource = env.resource(API, p["ResourceName"])
    models = env.models.get(resource.name)
    latest = models is not None and models.api_version == resource.version
    return {
        "Models": models.text if models is not None else None,
        "Status": "LATEST" if latest else "STALE",
        "ModelIntrospectionSchema": json.dumps({"version": 1, "models": {}}) if models else None,
    }


def _list_buckets(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    return {"Buckets": [{"Name": n, "CreationDate": c} for n, c in state.buckets()]}


def _create_token(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    app = state.app(p["AppId"])
    session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    token = {
        "AppId": app.app_id,
        "SessionId": session,
        "ChallengeCode": f"{rng.randrange(10**6):06d}",
        "Ttl": TOKEN_TTL_SECONDS,
    }
    app.tokens[session] = token
    return dict(token)


def _get_token(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    token = state.app(p["AppId"]).tokens.get(p["SessionId"])
    if token is None:
        raise not_found("token", f"session {p['SessionId']!r} not found")
    return dict(token)


def _delete_token(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    removed = state.app(p["AppId"]).tokens.pop(p["SessionId"], None)
    return {"IsSuccess": removed is not None}


def _update_config(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    app = state.app(p["AppId"])
    config = dict(app.config or {"BackendManagerAppId": app.app_id})
    if "LoginAuthConfig" in p:
        config["LoginAuthConfig"] = p["LoginAuthConfig"]
    app.config = config
    return {"AppId": app.app_id, **config}


def _remove_config(state: BackendState, p: Params, rng: random.Random) -> dict[str, Any]:
    state.app(p["AppId"]).config = None
    return {}


DIRECT: dict[str, Handler] = {
    "GetBackend": _get_backend,
    "GetBackendAuth": _get_resource(AUTH),
    "GetBackendStorage": _get_resource(STORAGE),
    "GetBackendAPI": _get_resource(API),
    "GetBackendAPIModels": _get_models,
    "ListS3Buckets": _list_buckets,
    "CreateToken": _create_token,
    "GetToken": _get_token,
    "DeleteToken": _delete_token,
    "UpdateBackendConfig": _update_config,
    "RemoveBackendConfig": _remove_config,
}
