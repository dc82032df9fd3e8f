"""deploy/: the image, the Kubernetes manifests, least-privilege IAM and the queues, checked."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import kubernetes_validate
import pytest
import yaml
from botocore import xform_name

from orchestrator import servicemodel, settings
from orchestrator.messages import is_destructive

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "kubernetes" / "base"
OVERLAY = DEPLOY / "kubernetes" / "overlays" / "example"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.30.0"
CRDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "kustomization.yaml").read_text())


def base_resources() -> list[dict[str, Any]]:
    return [doc for name in kustomization(BASE)["resources"] for doc in load(BASE / name)]


def merge(base: Any, patch: Any) -> Any:
    """A strategic-merge stand-in: maps merge recursively, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(patch)


def render_overlay() -> list[dict[str, Any]]:
    """The overlay as kustomize renders it: patches, images, namespace, common labels."""
    overlay = kustomization(OVERLAY)
    resources = base_resources()
    for patch_ref in overlay["patches"]:
        (patch,) = load(OVERLAY / patch_ref["path"])
        matches = [
            i
            for i, r in enumerate(resources)
            if (r["kind"], r["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
        ]
        assert len(matches) == 1, f"patch {patch_ref['path']} matches no base resource"
        resources[matches[0]] = merge(resources[matches[0]], patch)
    labels = kustomization(BASE)["labels"][0]["pairs"]
    for resource in resources:
        resource["metadata"]["namespace"] = overlay["namespace"]
        resource["metadata"].setdefault("labels", {}).update(labels)
        if resource["kind"] == "Deployment":
            for container in resource["spec"]["template"]["spec"]["containers"]:
                for image in overlay["images"]:
                    if container["image"].split(":")[0] == image["name"]:
                        container["image"] = f"{image['newName']}:{image['newTag']}"
    return resources


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["kind"] == kind]
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in text and "HEALTHCHECK" in text and 'ENTRYPOINT ["orchestrator"]' in text
    assert text.count("FROM ") == 2  # builder + slim runtime: no build tools in the image


@pytest.mark.parametrize("rendering", ["base", "overlay"])
def test_manifests_validate_against_kubernetes_schemas(rendering: str) -> None:
    resources = base_resources() if rendering == "base" else render_overlay()
    kinds = {r["kind"] for r in resources}
    assert kinds >= {"Deployment", "ServiceAccount", "ConfigMap", "Service"} | CRDS
    assert "PodDisruptionBudget" in kinds
    for resource in resources:
        if resource["kind"] in CRDS:
            continue
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_custom_resources_have_what_their_operators_need() -> None:
    resources = render_overlay()
    scaled = by_kind(resources, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert (
        scaled["spec"]["scaleTargetRef"]["name"]
        == by_kind(resources, "Deployment")["metadata"]["name"]
    )
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= 20
    (trigger,) = scaled["spec"]["triggers"]
    config = by_kind(resources, "ConfigMap")["data"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["queueURL"] == config["ORCHESTRATOR_QUEUE_URL"]
    assert trigger["metadata"]["awsRegion"] == config["AWS_REGION"]
    auth = by_kind(resources, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["podIdentity"]["provider"] == "aws"
    monitor = by_kind(resources, "ServiceMonitor")
    service = by_kind(resources, "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    rule = by_kind(resources, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["spec"]["groups"]


def test_deployment_is_safe_to_run_and_to_stop() -> None:
    """Probes on /healthz and /readyz, non-root, read-only root, resources, and a termination
    grace period longer than the worker's longest shutdown."""
    resources = render_overlay()
    deployment = by_kind(resources, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert pod["serviceAccountName"] == by_kind(resources, "ServiceAccount")["metadata"]["name"]
    assert (
        "eks.amazonaws.com/role-arn"
        in by_kind(resources, "ServiceAccount")["metadata"]["annotations"]
    )
    config = by_kind(resources, "ConfigMap")["data"]
    loaded = settings.load(None, config)
    longest_stop = max(loaded.shutdown_grace, loaded.wait_time_seconds + 2) + 10
    assert pod["terminationGracePeriodSeconds"] > longest_stop
    assert loaded.ledger.startswith("dynamodb://")  # replicas share the ledger
    assert container["image"].endswith(":0.1.0") and "/" in container["image"]
    port = int(config["ORCHESTRATOR_METRICS_PORT"])
    assert container["ports"][0]["containerPort"] == port


def test_prometheus_rule_is_generated_from_the_alert_rules() -> None:
    sys.path.insert(0, str(DEPLOY))
    try:
        import build_prometheusrule
    finally:
        sys.path.remove(str(DEPLOY))
    committed = (BASE / "prometheusrule.yaml").read_text()
    assert committed == build_prometheusrule.render(), "run deploy/build_prometheusrule.py"


# --- least privilege ------------------------------------------------------------------------

#: Commands that are not the worker: they run with an operator's or producer's credentials.
NOT_THE_WORKER = {"demo.py", "producer.py", "oncall.py"}


def worker_sources() -> list[Path]:
    return [
        path
        for path in (ROOT / "orchestrator").rglob("*.py")
        if "emulator" not in path.parts and path.name not in NOT_THE_WORKER
    ]


def called_operations(service: str) -> set[str]:
    """API operations of ``service`` whose client method the worker's code names (a call
    ``client.method(...)`` or a method name passed as a string to a call helper)."""
    names: set[str] = set()
    for path in worker_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
    model = botocore.session.get_session().get_service_model(service)
    return {op for op in model.operation_names if xform_name(op) in names}


def derived_actions() -> set[str]:
    """Everything the worker can call: SQS and DynamoDB calls in its code, every non-destructive
    AmplifyBackend mutation (the dispatcher calls any of them) and ListBackendJobs (tracking,
    reconciliation)."""
    amplify = {op for op in servicemodel.mutations() if not is_destructive(op)}
    amplify.add("ListBackendJobs")
    return (
        {f"sqs:{op}" for op in called_operations("sqs")}
        | {f"dynamodb:{op}" for op in called_operations("dynamodb")}
        | {f"amplifybackend:{op}" for op in amplify}
    )


def test_iam_policy_grants_exactly_what_the_code_calls() -> None:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    granted = {action for s in policy["Statement"] for action in s["Action"]}
    derived = derived_actions()
    assert "sqs:ReceiveMessage" in derived and "dynamodb:PutItem" in derived  # the analysis works
    assert granted - derived == set(), "granted but never called"
    assert derived - granted == set(), "called but not granted"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert all(resource != "*" for resource in statement["Resource"]), statement["Sid"]


def test_amplify_calls_in_the_code_are_covered_by_the_derivation() -> None:
    """Operation names written literally in the worker (tracker, reconciliation) are in the set."""
    literal = called_operations("amplifybackend")
    model_names = set(servicemodel.service_model().operation_names)
    for path in worker_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in model_names:
                literal.add(node.value)
    derived = {a.split(":", 1)[1] for a in derived_actions() if a.startswith("amplifybackend:")}
    assert literal <= derived, literal - derived


# --- queues as code -------------------------------------------------------------------------

CFN = DEPLOY / "cloudformation" / "queues.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _tag)


def test_cloudformation_is_cfn_lint_clean() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), str(CFN)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_has_both_queue_kinds_redrive_encryption_and_alarms() -> None:
    template = yaml.load(CFN.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
    resources = template["Resources"]
    assert template["Parameters"]["QueueType"]["AllowedValues"] == ["standard", "fifo"]
    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    assert set(queues) == {"ChangeQueue", "ChangeDeadLetterQueue", "ResultsQueue"}
    assert all(q["Properties"].get("SqsManagedSseEnabled") for q in queues.values())
    change = queues["ChangeQueue"]["Properties"]
    assert "IsFifo" in json.dumps(change["FifoQueue"])
    assert "ChangeDeadLetterQueue" in json.dumps(change["RedrivePolicy"])
    alarms = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::CloudWatch::Alarm"]
    metrics = {alarm["MetricName"] for alarm in alarms}
    assert metrics == {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
    table = resources["LedgerTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by_status"
    assert table["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
