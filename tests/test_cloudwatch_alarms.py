"""Queue alerts from a source that outlives the workers: SQS's own CloudWatch metrics.

- deploy/cloudformation/queues.yaml, deployed into moto's CloudFormation on loopback for the
  standard and the FIFO variant: DescribeAlarms shows each alarm on the stack's own queues
  (QueueName), with its metric or metric-math expression, threshold, periods, comparison and
  missing-data treatment, and the retention numbers in the expiry expression are the deployed
  queues' own.
- grafana/alerts/cloudwatch.rules.yaml: `promtool check rules` and `promtool test rules` (the
  cases in cloudwatch.rules.test.yaml); every alert fires in a case and stays quiet in
  another; the rules read only series deploy/cloudwatch-exporter.yml makes the exporter export,
  and use the template's thresholds.
- docs/queue-alarms.md covers every alarm and alert.

promtool comes from the Debian package ``prometheus`` (`make test` installs it); without it
these tests fail, they never skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import botocore.session
import pytest
import yaml
from botocore.model import Shape
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

from tests.test_deploy import cloudformation

ROOT = Path(__file__).parents[1]
CFN = ROOT / "deploy" / "cloudformation" / "queues.yaml"
ALERTS = ROOT / "grafana" / "alerts"
RULES = ALERTS / "cloudwatch.rules.yaml"
RULE_TESTS = ALERTS / "cloudwatch.rules.test.yaml"
EXPORTER = ROOT / "deploy" / "cloudwatch-exporter.yml"
GUIDE = ROOT / "docs" / "queue-alarms.md"
MISSING_PROMTOOL = (
    "`promtool` not found: install the Debian package prometheus (`make test` does it: "
    "apt-get install prometheus, as root or through sudo)"
)
TOPIC = "arn:aws:sns:us-east-1:123456789012:orchestrator-oncall"

PUT_METRIC_ALARM = (
    botocore.session.get_session()
    .get_service_model("cloudwatch")
    .operation_model("PutMetricAlarm")
    .input_shape
)


# --- the template in moto's CloudFormation --------------------------------------------------


def template() -> dict[str, Any]:
    return cloudformation()


def _typed(value: Any, shape: Shape) -> Any:
    """A resolved CloudFormation property as the API's type (a Ref'd Number parameter may
    arrive as a string); unknown property names fail, as CloudFormation's schema would."""
    if shape.type_name == "structure":
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{shape.name}: no such properties {sorted(unknown)}"
        return {key: _typed(item, shape.members[key]) for key, item in value.items()}
    if shape.type_name == "list":
        return [_typed(item, shape.member) for item in value]
    if shape.type_name == "integer":
        number = float(value)
        assert number.is_integer(), (shape.name, value)
        return int(number)
    if shape.type_name == "double":
        return float(value)
    if shape.type_name == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


class AlarmResource(CloudFormationModel):
    """``AWS::CloudWatch::Alarm`` for moto's CloudFormation, which (moto 5.2) has none and
    silently creates nothing for it. Like CloudFormation's own handler, it hands the resolved
    properties to PutMetricAlarm, here through botocore (which validates them against the API
    model) to the same moto server. Delete this class once moto has its own."""

    endpoint: ClassVar[str] = ""

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        assert attribute_name == "Arn", attribute_name
        return self.arn

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **_: Any,
    ) -> AlarmResource:
        properties = {**cloudformation_json["Properties"], "AlarmName": resource_name}
        _cloudwatch(cls.endpoint).put_metric_alarm(**_typed(properties, PUT_METRIC_ALARM))
        return cls(
            resource_name, f"arn:aws:cloudwatch:{region_name}:{account_id}:alarm:{resource_name}"
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        _cloudwatch(cls.endpoint).delete_alarms(AlarmNames=[resource_name])


def _cloudwatch(endpoint: str) -> Any:
    return boto3.client("cloudwatch", endpoint_url=endpoint)


@pytest.fixture(scope="module")
def moto_cloudformation(moto_sqs: str) -> str:
    """moto's server (conftest's, on loopback), able to create alarms from templates."""
    AlarmResource.endpoint = moto_sqs
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()  # moto lists its CloudFormation models once, by subclass
    assert parsing.get_model_map()["AWS::CloudWatch::Alarm"] is AlarmResource
    return moto_sqs


def _queue_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _retention(sqs: Any, name: str) -> int:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    return int(attributes["Attributes"]["MessageRetentionPeriod"])


@pytest.fixture(scope="module", params=["standard", "fifo"])
def stack(request: pytest.FixtureRequest, moto_cloudformation: str) -> Iterator[dict[str, Any]]:
    """The template deployed with QueueType = the param; the standard one with an SNS topic and
    non-default age parameters, the FIFO one with the defaults. Deleted afterwards."""
    kind = request.param
    prefix = f"alarms-{uuid.uuid4().hex[:10]}"
    parameters = {"Prefix": prefix, "QueueType": kind}
    if kind == "standard":
        parameters |= {
            "AlarmTopicArn": TOPIC,
            "OldestMessageAlarmSeconds": "1800",
            "OldestMessageAlarmPeriods": "3",
            "DeadLetterExpiryWarningSeconds": "86400",
        }
    cfn = boto3.client("cloudformation", endpoint_url=moto_cloudformation)
    cfn.create_stack(
        StackName=prefix,
        TemplateBody=CFN.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    described = cfn.describe_stacks(StackName=prefix)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    cloudwatch = _cloudwatch(moto_cloudformation)
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]
    sqs = boto3.client("sqs", endpoint_url=moto_cloudformation)
    change = _queue_name(outputs["ChangeQueueUrl"])
    dlq = _queue_name(outputs["DeadLetterQueueUrl"])
    yield {
        "kind": kind,
        "prefix": prefix,
        "parameters": parameters,
        "alarms": {alarm["AlarmName"].removeprefix(f"{prefix}-"): alarm for alarm in alarms},
        "change": change,
        "dlq": dlq,
        "retention": {"change": _retention(sqs, change), "dlq": _retention(sqs, dlq)},
    }
    cfn.delete_stack(StackName=prefix)
    assert not cloudwatch.describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]


def test_only_named_producers_may_send_to_the_change_queue() -> None:
    """With ProducerPrincipalArns the change queue's policy denies SendMessage to every other
    principal (the first line of defence before the sender policy); without, there is none.
    (moto's CloudFormation has no AWS::SQS::QueuePolicy: checked on the template itself.)"""
    resources = template()["Resources"]
    policy = resources["ChangeQueuePolicy"]
    assert policy["Condition"] == "HasProducers"
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    deny = statements["SendForNamedProducersOnly"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "sqs:SendMessage")
    named = deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    allow = statements["NamedProducersMaySend"]
    assert allow["Effect"] == "Allow" and "sqs:SendMessage" in allow["Action"]
    assert allow["Condition"]["ArnLike"]["aws:PrincipalArn"] == named
    assert template()["Parameters"]["ProducerPrincipalArns"]["Default"] == ""


def _parameter(stack: dict[str, Any], name: str) -> float:
    default = template()["Parameters"][name]["Default"]
    return float(stack["parameters"].get(name, default))


def _queries(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {query["Id"]: query for query in alarm["Metrics"]}


def _metric(query: dict[str, Any]) -> tuple[str, str, list[dict[str, str]], int, str]:
    stat = query["MetricStat"]
    metric = stat["Metric"]
    return (
        metric["Namespace"],
        metric["MetricName"],
        metric["Dimensions"],
        stat["Period"],
        stat["Stat"],
    )


def test_the_stack_has_exactly_the_three_queue_alarms_with_their_actions(
    stack: dict[str, Any],
) -> None:
    """1. Deploy. 2. DescribeAlarms by the stack's prefix: the three alarms, each notifying the
    topic on ALARM and on OK when one is given, nobody otherwise; none fires on missing data."""
    alarms = stack["alarms"]
    assert set(alarms) == {"oldest-change-request", "dead-letters-growing", "dead-letters-expiring"}
    expected = [TOPIC] if "AlarmTopicArn" in stack["parameters"] else []
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == expected, name
        assert alarm["OKActions"] == expected, name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["AlarmDescription"].rstrip().endswith("docs/queue-alarms.md."), name


def test_oldest_change_request_alarm_is_on_the_change_queues_age(stack: dict[str, Any]) -> None:
    """The change queue's ApproximateAgeOfOldestMessage (Maximum, 1-minute periods) above
    OldestMessageAlarmSeconds for OldestMessageAlarmPeriods consecutive periods: the age, not
    the count, and not "> 0"."""
    alarm = stack["alarms"]["oldest-change-request"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": stack["change"]}]
    assert stack["change"].endswith(".fifo") is (stack["kind"] == "fifo")
    assert (alarm["Statistic"], alarm["Period"]) == ("Maximum", 60)
    assert alarm["Threshold"] == _parameter(stack, "OldestMessageAlarmSeconds") >= 900
    periods = _parameter(stack, "OldestMessageAlarmPeriods")
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == periods
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_dead_letter_alarm_fires_on_growth_of_the_stored_count(stack: dict[str, Any]) -> None:
    """Metric math on the DLQ: DIFF of visible + in flight (each FILLed with 0, so the first
    dead letter on an idle DLQ counts), alarming when it grew in 1 of 2 five-minute periods."""
    alarm = stack["alarms"]["dead-letters-growing"]
    assert "MetricName" not in alarm and "Statistic" not in alarm
    queries = _queries(alarm)
    dimensions = [{"Name": "QueueName", "Value": stack["dlq"]}]
    assert stack["dlq"].endswith("-dlq.fifo" if stack["kind"] == "fifo" else "-dlq")
    assert _metric(queries["visible"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        dimensions,
        300,
        "Maximum",
    )
    assert _metric(queries["inflight"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesNotVisible",
        dimensions,
        300,
        "Maximum",
    )
    assert queries["growth"]["Expression"] == "DIFF(FILL(visible, 0) + FILL(inflight, 0))"
    assert [q["Id"] for q in alarm["Metrics"] if q["ReturnData"]] == ["growth"]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (2, 1)


def test_dead_letter_expiry_alarm_uses_the_deployed_retentions(stack: dict[str, Any]) -> None:
    """Metric math on the DLQ's oldest age: the worst-case time left before it expires, from
    the deployed queues' MessageRetentionPeriod (on a standard queue the change queue's
    retention may already be used up: the age on the DLQ counts from the move, expiry from the
    first send; FIFO resets it), alarming below DeadLetterExpiryWarningSeconds."""
    alarm = stack["alarms"]["dead-letters-expiring"]
    queries = _queries(alarm)
    assert _metric(queries["age"]) == (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        [{"Name": "QueueName", "Value": stack["dlq"]}],
        300,
        "Maximum",
    )
    retention = stack["retention"]
    used = 0 if stack["kind"] == "fifo" else retention["change"]
    assert queries["left"]["Expression"] == f"{retention['dlq']} - {used} - age"
    assert [q["Id"] for q in alarm["Metrics"] if q["ReturnData"]] == ["left"]
    warning = _parameter(stack, "DeadLetterExpiryWarningSeconds")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (warning, "LessThanThreshold")
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (2, 2)
    assert retention["dlq"] > retention["change"]  # AWS: a DLQ must outlive its source queue
    assert retention["dlq"] - used - warning > 86400  # fires at an age of days, not at once


# --- the Prometheus rules --------------------------------------------------------------------


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(MISSING_PROMTOOL)
    return subprocess.run(
        [path, *args], cwd=ALERTS, capture_output=True, text=True, check=False, timeout=60
    )


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass_and_prove_every_alert_both_ways() -> None:
    """`promtool test rules`: a constant DLQ of 3, dead letters being read (visible to in
    flight), redrive and purge, and a large but young backlog stay quiet; growth, the first
    dead letter on an idle DLQ, an old change request, dead letters near expiry (7 days on a
    standard DLQ, 11 on FIFO) and a failing exporter fire."""
    result = _promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for alert in _alerts():
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert} never fires in a test"
        assert any(not case["exp_alerts"] for case in mine), f"{alert}: no quiet case"


def test_every_alert_has_severity_summary_description_and_a_runbook() -> None:
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["for"], name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        steps = re.findall(r"^\d\. ", annotations["runbook"], flags=re.MULTILINE)
        assert len(steps) >= 3, name
    for name in ("OrchestratorDeadLettersGrowing", "OrchestratorDeadLettersExpiring"):
        runbook = _alerts()[name]["annotations"]["runbook"]
        for command in ("orchestrator dlq ls", "orchestrator dlq show", "orchestrator dlq redrive"):
            assert command in runbook, (name, command)
        assert "--dry-run" in runbook and "orchestrator dlq purge --older-than" in runbook, name


def _snake(name: str) -> str:
    """The exporter's name mangling (CloudWatchCollector.toSnakeCase)."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _exported() -> set[str]:
    """The series names deploy/cloudwatch-exporter.yml makes the exporter export:
    aws_<namespace>_<metric>_<statistic>, snake_case."""
    config = yaml.safe_load(EXPORTER.read_text())
    names = set()
    for metric in config["metrics"]:
        namespace = metric["aws_namespace"].lower().replace("/", "_")
        for statistic in metric["aws_statistics"]:
            names.add(f"{namespace}_{_snake(metric['aws_metric_name'])}_{_snake(statistic)}")
    return names


def test_exporter_config_exports_the_sqs_metrics_per_queue() -> None:
    """The four AWS/SQS metrics, each per QueueName, selecting the stack's change queue and DLQ
    of both kinds (the exporter matches the whole name) and not its results queue."""
    config = yaml.safe_load(EXPORTER.read_text())
    known = {"region", "role_arn", "period_seconds", "range_seconds", "delay_seconds"}
    known |= {"set_timestamp", "use_get_metric_data", "list_metrics_cache_ttl", "metrics"}
    known |= {"warn_on_empty_list_dimensions"}
    assert set(config) <= known, set(config) - known
    assert config["set_timestamp"] is False  # samples at scrape time: no `offset` in the rules
    assert config["delay_seconds"] < config["range_seconds"] <= 600
    assert _exported() == {
        "aws_sqs_approximate_age_of_oldest_message_maximum",
        "aws_sqs_approximate_number_of_messages_visible_maximum",
        "aws_sqs_approximate_number_of_messages_not_visible_maximum",
        "aws_sqs_number_of_messages_sent_sum",
    }
    default = template()["Parameters"]["Prefix"]["Default"]
    for metric in config["metrics"]:
        assert metric["aws_namespace"] == "AWS/SQS"
        assert metric["aws_dimensions"] == ["QueueName"]
        (pattern,) = metric["aws_dimension_select_regex"]["QueueName"]
        for name in ("changes", "changes.fifo", "changes-dlq", "changes-dlq.fifo"):
            assert re.fullmatch(pattern, f"{default}-{name}"), (pattern, name)
        assert not re.fullmatch(pattern, f"{default}-results")


def test_rules_read_only_what_the_exporter_exports() -> None:
    """Every aws_* series a rule reads (by name or by a __name__ regex) is exported."""
    exported = _exported()
    read = set()
    for rule in _rules():
        by_name = re.sub(r'__name__=~"[^"]+"', "", rule["expr"])
        read |= set(re.findall(r"\baws_sqs_[a-z_]+\b", by_name))
        for pattern in re.findall(r'__name__=~"([^"]+)"', rule["expr"]):
            matched = {name for name in exported if re.fullmatch(pattern, name)}
            assert matched, pattern
            read |= matched
    assert read <= exported, read - exported
    assert "aws_sqs_approximate_age_of_oldest_message_maximum" in read


def test_rules_and_alarms_share_their_thresholds() -> None:
    """The Prometheus alerts fire where the template's alarms do, with their defaults: the
    oldest change request above OldestMessageAlarmSeconds for OldestMessageAlarmPeriods
    minutes; dead letters older than retention - (change-queue retention on a standard queue)
    - DeadLetterExpiryWarningSeconds."""
    parameters = template()["Parameters"]
    retention = template()["Mappings"]["Retention"]["Seconds"]
    alerts = _alerts()
    oldest = alerts["OrchestratorOldestChangeRequestTooOld"]
    assert f"> {parameters['OldestMessageAlarmSeconds']['Default']}" in " ".join(
        oldest["expr"].split()
    )
    assert oldest["for"] == f"{parameters['OldestMessageAlarmPeriods']['Default']}m"
    warning = parameters["DeadLetterExpiryWarningSeconds"]["Default"]
    standard = retention["DeadLetterQueue"] - retention["ChangeQueue"] - warning
    fifo = retention["DeadLetterQueue"] - warning
    expr = " ".join(alerts["OrchestratorDeadLettersExpiring"]["expr"].split())
    assert f'{{queue_name=~".+-changes-dlq"}} > {standard}' in expr
    assert f'{{queue_name=~".+-changes-dlq\\\\.fifo"}} > {fifo}' in expr


# --- the guide -------------------------------------------------------------------------------


def test_guide_covers_every_alarm_and_alert_and_what_on_call_does() -> None:
    """docs/queue-alarms.md names each alarm (`PREFIX-...`) and alert, each alarm parameter,
    the missing-data choice, the exporter setup and the `orchestrator dlq` commands."""
    text = GUIDE.read_text()
    resources = template()["Resources"].values()
    alarms = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]
    names = [alarm["AlarmName"]["Sub"].replace("${Prefix}", "PREFIX") for alarm in alarms]
    missing = [name for name in [*names, *_alerts()] if f"`{name}`" not in text]
    assert not missing, f"docs/queue-alarms.md does not cover {missing}"
    for parameter in template()["Parameters"]:
        if "Alarm" in parameter or "DeadLetter" in parameter:
            assert f"`{parameter}`" in text, parameter
    for must in ("(dlq.md)", "TreatMissingData", "deploy/cloudwatch-exporter.yml"):
        assert must in text, must
    for command in ("ls", "show", "redrive", "purge"):
        assert f"orchestrator dlq {command}" in text, command
