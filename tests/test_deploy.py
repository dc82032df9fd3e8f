"""deploy/ and docs/production.md: the image, the Kubernetes manifests, least-privilege IAM, the
queues and ledger table as code, and the production guide, each checked against the code.

Nothing here needs Docker, a cluster or AWS: hadolint and cfn-lint run as subprocesses, the
kustomize overlay is rendered in Python (:func:`render_overlay`), built-in kinds are validated
against the Kubernetes schemas by kubernetes-validate and custom resources (KEDA, Prometheus
Operator) structurally, and the API operations the worker can call are derived from its source
(AST) and from botocore's AmplifyBackend model.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import botocore.session
import kubernetes_validate
import pytest
import yaml
from botocore import xform_name

from orchestrator import servicemodel, settings
from orchestrator.ledger.table import STATUS_INDEX
from orchestrator.messages import is_destructive

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "kubernetes" / "base"
OVERLAY = DEPLOY / "kubernetes" / "overlays" / "example"
DOCKERFILE = DEPLOY / "Dockerfile"
CFN = DEPLOY / "cloudformation" / "queues.yaml"
RULES = ROOT / "grafana" / "alerts" / "orchestrator.rules.yaml"
PRODUCTION_DOC = ROOT / "docs" / "production.md"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.30.0"

#: Custom resources kubernetes-validate has no schema for: the fields their operators need.
CRD_REQUIRED: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "ServiceMonitor": ("monitoring.coreos.com/v1", {"spec": ("selector", "endpoints")}),
    "PrometheusRule": ("monitoring.coreos.com/v1", {"spec": ("groups",)}),
    "ScaledObject": ("keda.sh/v1alpha1", {"spec": ("scaleTargetRef", "triggers")}),
    "TriggerAuthentication": ("keda.sh/v1alpha1", {"spec": ("podIdentity",)}),
}
#: Where kustomize's `labels: includeSelectors: true` puts the labels, for the kinds we use.
SELECTOR_PATHS = {
    "Deployment": [
        ("spec", "selector", "matchLabels"),
        ("spec", "template", "metadata", "labels"),
    ],
    "Service": [("spec", "selector")],
    "PodDisruptionBudget": [("spec", "selector", "matchLabels")],
}


# --- rendering the kustomization -------------------------------------------------------------


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return document


def _key(resource: dict[str, Any]) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize applies it here: maps merge recursively; lists are replaced
    (kustomize's behaviour for custom resources; patches of built-in kinds must not hold lists,
    see :func:`_has_list`)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def _has_list(value: Any) -> bool:
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and any(_has_list(v) for v in value.values())


def _dig(resource: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = resource
    for part in path:
        node = node.setdefault(part, {})
    return node


def _add_labels(resource: dict[str, Any], labels: dict[str, str], selectors: bool) -> None:
    resource["metadata"].setdefault("labels", {}).update(labels)
    if not selectors:
        return
    for path in SELECTOR_PATHS.get(resource["kind"], []):
        _dig(resource, path).update(labels)
    pod = resource.get("spec", {}).get("template", {}).get("spec", {})
    for constraint in pod.get("topologySpreadConstraints", []):
        _dig(constraint, ("labelSelector", "matchLabels")).update(labels)


def render(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize directory`` for the features this repository uses: resources (files
    or a base directory), labels with includeSelectors, patches by kind and name, images and
    namespace. Checked once against kubectl kustomize v5.5 (identical objects)."""
    spec = kustomization(directory)
    resources: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        resources += render(path) if path.is_dir() else load(path)
    for group in spec.get("labels", []):
        for resource in resources:
            _add_labels(resource, group["pairs"], group.get("includeSelectors", False))
    for patch_ref in spec.get("patches", []):
        (patch,) = load(directory / patch_ref["path"])
        matches = [i for i, r in enumerate(resources) if _key(r) == _key(patch)]
        assert len(matches) == 1, f"patch {patch_ref['path']} matches no resource"
        if patch["kind"] not in CRD_REQUIRED:
            assert not _has_list(patch), f"{patch_ref['path']}: lists merge by key in kustomize"
        resources[matches[0]] = _merge(resources[matches[0]], patch)
    for resource in resources:
        if "namespace" in spec:
            resource["metadata"]["namespace"] = spec["namespace"]
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            for image in spec.get("images", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    return resources


def base_resources() -> list[dict[str, Any]]:
    return render(BASE)


def render_overlay() -> list[dict[str, Any]]:
    return render(OVERLAY)


RENDERINGS = {"base": base_resources, "overlay": render_overlay}


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind]
    return found


def config_of(resources: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = by_kind(resources, "ConfigMap")["data"]
    return data


def env_names() -> list[str]:
    return ["ORCHESTRATOR_" + f.name.upper() for f in fields(settings.Settings)]


# --- the image ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "style", "--format", "json", DOCKERFILE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr


def test_dockerfile_builds_in_a_builder_stage_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions()
    stages = [args for name, args in instructions if name == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS builder"), stages
    images = {stage.split()[0] for stage in stages}
    (image,) = images  # the venv is copied between identical Pythons
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", image), f"pin a patch release: {image}"
    final = instructions[[name for name, _ in instructions].index("FROM", 1) :]
    final_text = " ".join(args for _, args in final)
    for build_tool in ("apt-get", "gcc", "build-essential", "pip install", "pip wheel"):
        assert build_tool not in final_text, f"{build_tool} in the final stage"
    assert any(name == "COPY" and args.startswith("--from=builder") for name, args in final)
    for name, args in instructions:
        if name == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args, args
    final_dict = dict(final)
    assert final_dict["USER"] == "10001:10001"
    assert final_dict["ENTRYPOINT"] == '["orchestrator"]' and final_dict["CMD"] == '["run"]'
    healthcheck = final_dict["HEALTHCHECK"]
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck
    assert "curl" not in healthcheck and "wget" not in healthcheck
    # The image and the manifests agree on the user, the port and the ledger directory.
    resources = base_resources()
    pod = by_kind(resources, "Deployment")["spec"]["template"]["spec"]
    assert final_dict["USER"] == f"{pod['securityContext']['runAsUser']}:" + str(
        pod["securityContext"]["runAsGroup"]
    )
    assert final_dict["EXPOSE"] == config_of(resources)["ORCHESTRATOR_METRICS_PORT"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert final_dict["WORKDIR"] in mounts  # a sqlite:/// ledger there would be writable


def test_dockerignore_keeps_the_build_context_to_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "exclude everything, then re-include what the build needs"
    included = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for name, args in dockerfile_instructions():
        if name == "COPY" and not args.startswith("--from"):
            copied |= {source.removeprefix("./").rstrip("/") for source in args.split()[:-1]}
    assert copied == included, (copied, included)
    assert all((ROOT / path).exists() for path in copied)
    assert "**/__pycache__" in patterns


# --- the Kubernetes manifests ---------------------------------------------------------------


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_manifests_validate_against_kubernetes_schemas(rendering: str) -> None:
    resources = RENDERINGS[rendering]()
    kinds = [r["kind"] for r in resources]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) == {
        "Deployment",
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        *CRD_REQUIRED,
    }
    for resource in resources:
        if resource["kind"] in CRD_REQUIRED:
            api_version, required = CRD_REQUIRED[resource["kind"]]
            assert resource["apiVersion"] == api_version
            assert resource["metadata"]["name"]
            for section, keys in required.items():
                missing = [key for key in keys if not resource[section].get(key)]
                assert not missing, f"{resource['kind']}: {section} lacks {missing}"
            continue
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_configmap_sets_every_setting_and_loads(rendering: str) -> None:
    config = config_of(RENDERINGS[rendering]())
    assert set(config) == set(env_names()) | {"AWS_REGION"}
    loaded = settings.load(None, config)
    assert loaded.ledger.startswith("dynamodb://"), "replicas must share the DynamoDB ledger"
    region = config["AWS_REGION"]
    for name in ("QUEUE_URL", "RESULTS_QUEUE_URL", "DLQ_URL"):
        assert config[f"ORCHESTRATOR_{name}"].startswith(f"https://sqs.{region}.amazonaws.com/")


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_deployment_is_safe_to_run_and_to_stop(rendering: str) -> None:
    """Probes on /healthz and /readyz, non-root, read-only root, no capabilities, seccomp,
    resources, and a termination grace period longer than the worker's longest shutdown."""
    resources = RENDERINGS[rendering]()
    deployment = by_kind(resources, "Deployment")
    assert "replicas" not in deployment["spec"], "the ScaledObject owns the replica count"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = config_of(resources)
    port = int(config["ORCHESTRATOR_METRICS_PORT"])
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": container_port["name"]}
    assert container["envFrom"] == [{"configMapRef": {"name": "orchestrator"}}]
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    container_security = container["securityContext"]
    assert container_security["readOnlyRootFilesystem"] is True
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in container_security["capabilities"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()
    # Writable places on a read-only root: /tmp, and the directory a SQLite ledger would use.
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {
        m["mountPath"] for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]
    }
    assert "/tmp" in writable
    loaded = settings.load(None, config)
    if loaded.ledger.startswith("sqlite:///"):
        assert str(Path(loaded.ledger.removeprefix("sqlite:///")).parent) in writable
    # SIGTERM: receiving stops (a long poll in flight may take wait + 2 s), requests drain for
    # the grace period, then deletes flush for up to 10 s (orchestrator/consumer.py).
    assert "ORCHESTRATOR_SHUTDOWN_GRACE" in config  # explicit, not the image's default
    longest_stop = max(loaded.shutdown_grace, loaded.wait_time_seconds + 2) + 10
    assert pod["terminationGracePeriodSeconds"] >= longest_stop + 10, "leave a margin"
    account = by_kind(resources, "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    budget = by_kind(resources, "PodDisruptionBudget")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    if rendering == "overlay":
        assert "/" in container["image"] and not container["image"].endswith(":latest")


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_custom_resources_have_what_their_operators_need(rendering: str) -> None:
    resources = RENDERINGS[rendering]()
    config = config_of(resources)
    scaled = by_kind(resources, "ScaledObject")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == by_kind(resources, "Deployment")["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= 20
    assert spec["cooldownPeriod"] >= 60
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"] == config["ORCHESTRATOR_QUEUE_URL"]
    assert trigger["metadata"]["awsRegion"] == config["AWS_REGION"]
    # One replica per ORCHESTRATOR_CONCURRENCY messages visible or in flight.
    assert trigger["metadata"]["queueLength"] == config["ORCHESTRATOR_CONCURRENCY"]
    assert trigger["metadata"].get("scaleOnInFlight", "true") == "true"
    auth = by_kind(resources, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["podIdentity"]["provider"] == "aws"
    assert auth["spec"]["podIdentity"]["identityOwner"] in {"keda", "workload"}

    service = by_kind(resources, "Service")
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == int(config["ORCHESTRATOR_METRICS_PORT"])
    assert service_port["targetPort"] == service_port["name"] == "metrics"
    monitor = by_kind(resources, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service_port["name"] and endpoint["path"] == "/metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    # The alert rules select job="orchestrator".
    assert {"targetLabel": "job", "replacement": "orchestrator"} in endpoint["relabelings"]

    rule = by_kind(resources, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for item in group["rules"]:
            assert item["expr"] and ("alert" in item or "record" in item)
            if "alert" in item:
                assert item["labels"]["severity"] in {"critical", "warning", "info"}
                assert item["annotations"]["runbook"], item["alert"]


def _generator() -> Any:
    sys.path.insert(0, str(DEPLOY))
    try:
        import build_prometheusrule
    finally:
        sys.path.remove(str(DEPLOY))
    return build_prometheusrule


def test_prometheus_rule_is_generated_from_the_alert_rules() -> None:
    generator = _generator()
    committed = (BASE / "prometheusrule.yaml").read_text()
    assert committed == generator.render(), "run deploy/build_prometheusrule.py"
    (rule,) = load(BASE / "prometheusrule.yaml")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


# --- least privilege ------------------------------------------------------------------------

#: Commands that are not the worker: they run with an operator's or a producer's credentials.
NOT_THE_WORKER = {"demo.py", "producer.py", "oncall.py", "table.py"}


def worker_sources() -> list[Path]:
    return sorted(
        path
        for path in (ROOT / "orchestrator").rglob("*.py")
        if not {"emulator", "testing"} & set(path.relative_to(ROOT).parts)
        and path.name not in NOT_THE_WORKER
    )


def _method_names(tree: ast.AST) -> set[str]:
    """Client method names a module calls: ``client.method(...)``, and the string naming the
    method in the call helpers that dispatch with getattr (``self._call("receive_message",
    ...)``, ``getattr(client, "name")``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            names.add(func.attr)
        helper = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        position = {"_call": 0, "getattr": 1}.get(helper)
        if position is not None and len(node.args) > position:
            argument = node.args[position]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names.add(argument.value)
    return names


def called_operations(service: str) -> set[str]:
    """API operations of ``service`` whose client method the worker's code calls."""
    names: set[str] = set()
    for path in worker_sources():
        names |= _method_names(ast.parse(path.read_text()))
    model = botocore.session.get_session().get_service_model(service)
    return {op for op in model.operation_names if xform_name(op) in names}


def amplify_operations_named_in_calls() -> set[str]:
    """AmplifyBackend operations the worker names literally in ``api.call("Operation", ...)``."""
    operations = set(servicemodel.service_model().operation_names)
    named: set[str] = set()
    for path in worker_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in operations
            ):
                named.add(node.args[0].value)
    return named


def derived_actions() -> set[str]:
    """Everything the worker can call: the SQS and DynamoDB calls in its code; every
    AmplifyBackend mutation it accepts by default (the dispatcher calls whichever a request
    names: the model's mutations less the destructive ones, which need
    ORCHESTRATOR_ALLOW_DESTRUCTIVE); and the operations the tracker and the reconciliation call
    by name (ListBackendJobs)."""
    amplify = {op for op in servicemodel.mutations() if not is_destructive(op)}
    amplify |= amplify_operations_named_in_calls()
    return (
        {f"sqs:{op}" for op in called_operations("sqs")}
        | {f"dynamodb:{op}" for op in called_operations("dynamodb")}
        | {f"amplifybackend:{op}" for op in amplify}
    )


def iam_policy() -> dict[str, Any]:
    policy: dict[str, Any] = json.loads((DEPLOY / "iam-policy.json").read_text())
    return policy


def test_the_analysis_finds_the_calls_it_must() -> None:
    """The derivation is not vacuous: calls known to exist are found, others are not."""
    assert {"ReceiveMessage", "DeleteMessageBatch", "SendMessage", "ChangeMessageVisibility"} <= (
        called_operations("sqs")
    )
    assert {"PutItem", "GetItem", "DescribeTable"} <= called_operations("dynamodb")
    assert "CreateTable" not in called_operations("dynamodb")  # init-ledger is the operator's
    assert "SendMessageBatch" not in called_operations("sqs")  # `orchestrator send` is producers'
    assert amplify_operations_named_in_calls() == {"ListBackendJobs"}
    assert "GetBackendJob" not in {a.split(":")[1] for a in derived_actions()}  # sweeps only


def test_iam_policy_grants_exactly_what_the_code_calls() -> None:
    policy = iam_policy()
    granted = {action for s in policy["Statement"] for action in s["Action"]}
    derived = derived_actions()
    assert granted - derived == set(), "granted but never called"
    assert derived - granted == set(), "called but not granted"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        for resource in statement["Resource"]:  # no wildcard service, region or account
            assert "*" not in ":".join(resource.split(":")[:5]), resource


def _queue_arn(url: str) -> str:
    host, account, name = url.removeprefix("https://").split("/")
    region = host.split(".")[1]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def test_iam_policy_scopes_each_action_to_the_resource_it_is_used_on() -> None:
    """Resources are the base ConfigMap's queues and ledger table; each queue gets only what
    the worker does with it (receive/delete/extend the change queue, dead-letter to the DLQ,
    publish outcomes)."""
    config = config_of(base_resources())
    change, dlq, results = (
        _queue_arn(config[f"ORCHESTRATOR_{name}"])
        for name in ("QUEUE_URL", "DLQ_URL", "RESULTS_QUEUE_URL")
    )
    region, account = change.split(":")[3:5]
    table = f"arn:aws:dynamodb:{region}:{account}:table/" + config[
        "ORCHESTRATOR_LEDGER"
    ].removeprefix("dynamodb://")
    actions_on: dict[str, set[str]] = {}
    for statement in iam_policy()["Statement"]:
        for resource in statement["Resource"]:
            actions_on.setdefault(resource, set()).update(statement["Action"])
    assert actions_on == {
        change: {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessageBatch",
            "sqs:ChangeMessageVisibility",
            "sqs:ChangeMessageVisibilityBatch",
            "sqs:GetQueueAttributes",  # RedrivePolicy at start, depth samples
        },
        dlq: {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"},
        results: {"sqs:SendMessage"},
        table: {
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        },
        f"{table}/index/{STATUS_INDEX}": {"dynamodb:Query"},
        f"arn:aws:amplifybackend:{region}:{account}:/backend/*": {
            a for a in derived_actions() if a.startswith("amplifybackend:")
        },
    }


def test_trust_policy_admits_the_workers_and_keda() -> None:
    trust = json.loads((DEPLOY / "iam-trust-policy.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert ":oidc-provider/" in statement["Principal"]["Federated"]
    conditions = statement["Condition"]["StringEquals"]
    (subjects,) = [v for k, v in conditions.items() if k.endswith(":sub")]
    (audience,) = [v for k, v in conditions.items() if k.endswith(":aud")]
    assert audience == "sts.amazonaws.com"
    overlay = render_overlay()
    account = by_kind(overlay, "ServiceAccount")["metadata"]
    assert f"system:serviceaccount:{account['namespace']}:{account['name']}" in subjects
    # identityOwner: workload -> the KEDA operator assumes this role to read the queue depth.
    assert by_kind(overlay, "TriggerAuthentication")["spec"]["podIdentity"] == {
        "provider": "aws",
        "identityOwner": "workload",
    }
    assert "system:serviceaccount:keda:keda-operator" in subjects


# --- queues and ledger table as code --------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _tag)


def cloudformation() -> dict[str, Any]:
    template: dict[str, Any] = yaml.load(CFN.read_text(), Loader=_CfnLoader)  # a SafeLoader
    return template


def test_cloudformation_is_cfn_lint_clean() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--format", "parseable", str(CFN)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_cloudformation_has_both_queue_kinds_redrive_encryption_and_alarms() -> None:
    template = cloudformation()
    resources = template["Resources"]
    assert template["Parameters"]["QueueType"]["AllowedValues"] == ["standard", "fifo"]
    assert template["Conditions"]["IsFifo"] == {"Equals": [{"Ref": "QueueType"}, "fifo"]}
    queues = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    assert set(queues) == {"ChangeQueue", "ChangeDeadLetterQueue", "ResultsQueue"}
    assert all(q.get("SqsManagedSseEnabled") is True for q in queues.values())
    for name in ("ChangeQueue", "ChangeDeadLetterQueue"):  # a FIFO queue's DLQ is FIFO too
        variants = queues[name]["QueueName"]["If"]
        assert variants[0] == "IsFifo" and ".fifo" in json.dumps(variants[1])
        assert ".fifo" not in json.dumps(variants[2])
        assert queues[name]["FifoQueue"] == {"If": ["IsFifo", True, {"Ref": "AWS::NoValue"}]}
    change = queues["ChangeQueue"]
    assert change["ContentBasedDeduplication"]["If"][1] is False  # dedup id = request_id
    assert change["RedrivePolicy"] == {
        "deadLetterTargetArn": {"GetAtt": "ChangeDeadLetterQueue.Arn"},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    # The alarms' values are checked on a deployed stack: tests/test_cloudwatch_alarms.py.
    alarms = {
        k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms) == {
        "OldestChangeRequestAlarm",
        "DeadLetterGrowthAlarm",
        "DeadLetterExpiryAlarm",
    }
    oldest = alarms["OldestChangeRequestAlarm"]
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert oldest["Dimensions"][0]["Value"] == {"GetAtt": "ChangeQueue.QueueName"}
    on_dlq = [{"Name": "QueueName", "Value": {"GetAtt": "ChangeDeadLetterQueue.QueueName"}}]
    for name in ("DeadLetterGrowthAlarm", "DeadLetterExpiryAlarm"):  # metric math on the DLQ
        stats = [q["MetricStat"] for q in alarms[name]["Metrics"] if "MetricStat" in q]
        assert stats and all(stat["Metric"]["Dimensions"] == on_dlq for stat in stats), name
    outputs = template["Outputs"]
    for queue in ("ChangeQueue", "DeadLetterQueue", "ResultsQueue"):
        assert {f"{queue}Url", f"{queue}Arn"} <= outputs.keys()
    assert {"LedgerTableName", "LedgerTableArn"} <= outputs.keys()


class _Constants(ast.NodeTransformer):
    """Replace the module constants the table definition uses by their values."""

    values = {"STATUS_INDEX": STATUS_INDEX}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(self.values[node.id]) if node.id in self.values else node


def _init_ledger_table() -> dict[str, Any]:
    """The table ``orchestrator init-ledger`` creates, read from orchestrator/ledger/table.py."""
    tree = ast.parse((ROOT / "orchestrator" / "ledger" / "table.py").read_text())
    table: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in {"create_table", "update_time_to_live"}:
                for keyword in node.keywords:
                    if keyword.arg and keyword.arg != "TableName":
                        value = _Constants().visit(copy.deepcopy(keyword.value))
                        table[keyword.arg] = ast.literal_eval(value)
    return table


def test_cloudformation_ledger_table_is_the_one_the_code_uses() -> None:
    properties = cloudformation()["Resources"]["LedgerTable"]["Properties"]
    expected = _init_ledger_table()
    assert properties["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == expected["KeySchema"]
    assert sorted(properties["AttributeDefinitions"], key=str) == sorted(
        expected["AttributeDefinitions"], key=str
    )
    assert properties["GlobalSecondaryIndexes"] == expected["GlobalSecondaryIndexes"]
    assert properties["TimeToLiveSpecification"] == expected["TimeToLiveSpecification"]
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    config = config_of(base_resources())
    assert config["ORCHESTRATOR_LEDGER"] == "dynamodb://orchestrator-ledger"
    assert properties["TableName"] == {"Sub": "${Prefix}-ledger"}
    assert cloudformation()["Parameters"]["Prefix"]["Default"] == "orchestrator"


# --- the production guide -------------------------------------------------------------------


def _documented_default(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, frozenset):
        return "empty"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_production_guide_lists_every_setting_with_its_default() -> None:
    rows: dict[str, str] = {}
    for line in PRODUCTION_DOC.read_text().splitlines():
        match = re.match(r"\| `(ORCHESTRATOR_[A-Z_]+)` \| ([^|]*) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip().strip("`")
    assert set(rows) == set(env_names())
    for f in fields(settings.Settings):
        cell = rows["ORCHESTRATOR_" + f.name.upper()]
        if f.default is MISSING and f.default_factory is MISSING:
            assert cell == "required", f.name
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        expected = _documented_default(default)
        assert cell == expected if expected else cell, (f.name, cell, expected)


def test_production_guide_says_what_to_do_for_every_alert() -> None:
    text = PRODUCTION_DOC.read_text()
    alerts = [
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert alerts
    missing = [alert for alert in alerts if f"`{alert}`" not in text]
    assert not missing, f"docs/production.md does not cover {missing}"
