"""In-memory backend state: apps, their backend environments, and the resources in each.

Layout::

    App(app_id, app_name, config, tokens, envs)
      Environment(name, resources: {"auth"|"storage"|"api": {resource name: Resource}},
                  models: {api resource name: GeneratedModels})

Only completed jobs and the immediate mutations (tokens, backend config) change it; the
lookups here raise the NotFoundException the API answers with. Resource configurations are
stored with API (model) member names, exactly as the request carried them. Creation times
are monotonic instants (those of the completing jobs), written by ``show_time`` when answered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.emulator.errors import not_found

AUTH = "auth"
STORAGE = "storage"
API = "api"
CATEGORIES = (AUTH, STORAGE, API)


@dataclass
class Resource:
    name: str
    config: dict[str, Any]
    created: float  # monotonic instant
    version: int = 1
    imported: bool = False


@dataclass
class GeneratedModels:
    text: str
    api_version: int


@dataclass
class Environment:
    name: str
    created: float  # monotonic instant
    resources: dict[str, dict[str, Resource]] = field(
        default_factory=lambda: {category: {} for category in CATEGORIES}
    )
    models: dict[str, GeneratedModels] = field(default_factory=dict)

    def resource(self, category: str, name: str) -> Resource:
        found = self.resources[category].get(name)
        if found is None:
            raise not_found(category, f"{category} resource {name!r} not found in {self.name!r}")
        return found

    def clone(self, name: str, created: float) -> Environment:
        copied = copy.deepcopy(self)
        copied.name, copied.created = name, created
        return copied


@dataclass
class App:
    app_id: str
    app_name: str
    envs: dict[str, Environment] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def env(self, name: str) -> Environment:
        found = self.envs.get(name)
        if found is None:
            raise not_found(
                "environment", f"backend environment {name!r} not found in app {self.app_id!r}"
            )
        return found

    def ensure_env(self, name: str, created: float) -> Environment:
        found = self.envs.get(name)
        if found is None:
            found = self.envs[name] = Environment(name, created)
        return found


class BackendState:
    def __init__(self, show_time: Callable[[float], str] = str) -> None:
        self.apps: dict[str, App] = {}
        self.show_time = show_time  # writes instants in answers (ListS3Buckets CreationDate)

    def app(self, app_id: str) -> App:
        found = self.apps.get(app_id)
        if found is None:
            raise not_found("app", f"app {app_id!r} not found")
        return found

    def env(self, app_id: str, name: str) -> Environment:
        return self.app(app_id).env(name)

    def ensure_app(self, app_id: str, app_name: str | None = None) -> App:
        found = self.apps.get(app_id)
        if found is None:
            found = self.apps[app_id] = App(app_id, app_name or app_id)
        elif app_name:
            found.app_name = app_name
        return found

    def seed(self, apps: Mapping[str, Sequence[str]], created: float) -> list[tuple[str, str]]:
        """Add the pre-seeded apps and environments that are missing (app name = app id);
        returns the (app, environment) pairs added."""
        added = []
        for app_id, envs in apps.items():
            app = self.ensure_app(app_id)
            for name in envs:
                if name not in app.envs:
                    app.ensure_env(name, created)
                    added.append((app_id, name))
        return added

    def buckets(self) -> list[tuple[str, str]]:
        """(bucket name, creation time as ``show_time`` writes it) of every storage resource."""
        found: dict[str, float] = {}
        for app in self.apps.values():
            for env in app.envs.values():
                for resource in env.resources[STORAGE].values():
                    name = resource.config.get("BucketName") or f"{app.app_id}-{resource.name}"
                    found.setdefault(str(name), resource.created)
        return [(name, self.show_time(created)) for name, created in sorted(found.items())]
