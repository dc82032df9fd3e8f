"""What each job-creating mutation requires when it arrives and does when its job COMPLETES.

Checks (``Effect.check``) run at request time and raise NotFoundException: the app must exist,
the environment named by ``BackendEnvironmentName`` (URI or body) must exist, and Update*/
Delete*/GenerateBackendAPIModels need the named resource. CreateBackend is the exception: it
creates the app and environment. Effects (``Effect.apply``) run when the job completes and are
tolerant: the world may have changed since the request (``conflict_mode="accept"``, a deleted
environment), in which case they do what still makes sense and never raise.

Imported resources: ImportBackendAuth stores an auth resource named after ``UserPoolId``;
ImportBackendStorage a storage resource named ``BucketName`` (or ``ServiceName`` without one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.emulator.state import (
    API,
    AUTH,
    STORAGE,
    BackendState,
    Environment,
    GeneratedModels,
    Resource,
)

Params = dict[str, Any]
Apply = Callable[[BackendState, Params, float], None]  # stamp: a monotonic instant
ENV = "BackendEnvironmentName"


@dataclass(frozen=True)
class Effect:
    apply: Apply
    category: str | None = None
    needs_resource: bool = False
    creates_env: bool = False

    def check(self, state: BackendState, params: Params) -> None:
        """Raise NotFoundException when what the mutation acts on does not exist."""
        if self.creates_env:
            return
        app = state.app(params["AppId"])
        if ENV not in params:
            return
        env = app.env(params[ENV])
        if self.needs_resource and self.category is not None:
            env.resource(self.category, params["ResourceName"])


def _env(state: BackendState, params: Params) -> Environment | None:
    app = state.apps.get(params["AppId"])
    return app.envs.get(params[ENV]) if app is not None else None


def _create_backend(state: BackendState, p: Params, stamp: float) -> None:
    state.ensure_app(p["AppId"], p.get("AppName")).ensure_env(p[ENV], stamp)


def _clone_backend(state: BackendState, p: Params, stamp: float) -> None:
    source = _env(state, p)
    if source is not None:
        target = p["TargetEnvironmentName"]
        state.apps[p["AppId"]].envs[target] = source.clone(target, stamp)


def _put(category: str) -> Apply:
    def apply(state: BackendState, p: Params, stamp: float) -> None:
        env = _env(state, p)
        if env is not None:
            name = p["ResourceName"]
            env.resources[category][name] = Resource(
                name, dict(p.get("ResourceConfig") or {}), stamp
            )

    return apply


def _update(category: str) -> Apply:
    def apply(state: BackendState, p: Params, stamp: float) -> None:
        env = _env(state, p)
        resource = env.resources[category].get(p["ResourceName"]) if env else None
        if resource is not None:
            resource.config = _merge(resource.config, p.get("ResourceConfig") or {})
            resource.version += 1

    return apply


def _delete(category: str) -> Apply:
    def apply(state: BackendState, p: Params, stamp: float) -> None:
        env = _env(state, p)
        if env is not None:
            env.resources[category].pop(p["ResourceName"], None)
            if category == API:
                env.models.pop(p["ResourceName"], None)

    return apply


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        both = isinstance(old, dict) and isinstance(value, dict)
        merged[key] = _merge(old, value) if both else value  # type: ignore[arg-type]
    return merged


def _pick(p: Params, *names: str) -> dict[str, Any]:
    return {name: p[name] for name in names if name in p}


def _import_auth(state: BackendState, p: Params, stamp: float) -> None:
    env = _env(state, p)
    if env is not None:
        config = _pick(p, "UserPoolId", "IdentityPoolId", "NativeClientId", "WebClientId")
        name = p["UserPoolId"]
        env.resources[AUTH][name] = Resource(name, config, stamp, imported=True)


def _import_storage(state: BackendState, p: Params, stamp: float) -> None:
    env = _env(state, p)
    if env is not None:
        config = _pick(p, "BucketName", "ServiceName")
        name = p.get("BucketName") or p["ServiceName"]
        env.resources[STORAGE][name] = Resource(name, config, stamp, imported=True)


def _generate_models(state: BackendState, p: Params, stamp: float) -> None:
    env = _env(state, p)
    resource = env.resources[API].get(p["ResourceName"]) if env else None
    if env is not None and resource is not None:
        text = f"type {resource.name.title().replace('-', '')} @model {{ id: ID! }}\n"
        env.models[resource.name] = GeneratedModels(text, resource.version)


def _delete_backend(state: BackendState, p: Params, stamp: float) -> None:
    app = state.apps.get(p["AppId"])
    if app is not None:
        app.envs.pop(p[ENV], None)


def _remove_all(state: BackendState, p: Params, stamp: float) -> None:
    app = state.apps.get(p["AppId"])
    if app is not None:
        app.envs.clear()
        if p.get("CleanAmplifyApp"):
            del state.apps[p["AppId"]]


def _create_config(state: BackendState, p: Params, stamp: float) -> None:
    app = state.apps.get(p["AppId"])
    if app is not None:
        manager = p.get("BackendManagerAppId") or app.app_id
        app.config = {**(app.config or {}), "BackendManagerAppId": manager}


EFFECTS: dict[str, Effect] = {
    "CreateBackend": Effect(_create_backend, creates_env=True),
    "CloneBackend": Effect(_clone_backend),
    "DeleteBackend": Effect(_delete_backend),
    "RemoveAllBackends": Effect(_remove_all),
    "CreateBackendConfig": Effect(_create_config),
    "ImportBackendAuth": Effect(_import_auth),
    "ImportBackendStorage": Effect(_import_storage),
    "GenerateBackendAPIModels": Effect(_generate_models, API, needs_resource=True),
}
_CATEGORY_OPS = {"BackendAPI": API, "BackendAuth": AUTH, "BackendStorage": STORAGE}
for _suffix, _category in _CATEGORY_OPS.items():
    EFFECTS[f"Create{_suffix}"] = Effect(_put(_category), _category)
    EFFECTS[f"Update{_suffix}"] = Effect(_update(_category), _category, needs_resource=True)
    EFFECTS[f"Delete{_suffix}"] = Effect(_delete(_category), _category, needs_resource=True)
