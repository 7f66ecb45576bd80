"""The chart renders what the API server accepts: lint, strict schema validation of every value
set against the oldest and newest Kubernetes it supports, the template logic (helm-unittest
suites in the chart's tests/), and values.schema.json refusing bad values with a clear message."""

import re
from pathlib import Path

import pytest

from headrace.testing.kube import CHART, CI_VALUES, KubeTools

pytestmark = pytest.mark.kube

VALUE_SETS = [None, *CI_VALUES]
VALUE_IDS = ["default", *(path.name.removesuffix("-values.yaml") for path in CI_VALUES)]


def _values_args(values: Path | None) -> list[str | Path]:
    return [] if values is None else ["--values", values]


def test_every_ci_value_set_is_tested() -> None:
    assert {"minimal", "production", "hooks-off"} <= set(VALUE_IDS)


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_lint(kube_tools: KubeTools, values: Path | None) -> None:
    done = kube_tools.run("helm", "lint", "--strict", CHART, *_values_args(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("kube_version", ["1.30.0", "1.36.0"])
@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_rendered_manifests_pass_strict_schemas(
    kube_tools: KubeTools, values: Path | None, kube_version: str
) -> None:
    rendered = kube_tools.run(
        "helm", "template", "rel", CHART, "--kube-version", kube_version, *_values_args(values)
    ).stdout
    # The Prometheus Operator's CRD is not among Kubernetes' schemas; the suites check it.
    location = (
        f"{kube_tools.schemas}/{{{{ .NormalizedKubernetesVersion }}}}-local{{{{ .StrictSuffix }}}}"
        "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )
    done = kube_tools.run(
        "kubeconform",
        "-strict",
        "-summary",
        "-kubernetes-version",
        kube_version,
        "-skip",
        "ServiceMonitor",
        "-schema-location",
        location,
        "-",
        input=rendered,
    )
    summary = re.search(r"(\d+) resources found.*Valid: (\d+), Invalid: (\d+)", done.stdout)
    assert summary is not None, done.stdout
    found, valid, invalid = map(int, summary.groups())
    monitors = rendered.count("kind: ServiceMonitor")
    # Four Deployments, ConfigMap, two Services, ServiceAccount, the migration Job at least.
    assert found >= 9
    assert (valid, invalid) == (found - monitors, 0), done.stdout


def test_template_logic(kube_tools: KubeTools) -> None:
    """The helm-unittest suites in deploy/helm/headrace/tests."""
    done = kube_tools.run("helm-unittest", "--color=false", CHART, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    suites = len(list((CHART / "tests").glob("*_test.yaml")))
    assert re.search(rf"Test Suites:\s+{suites} passed, {suites} total", done.stdout), done.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("kafka.partitions=many", "at '/kafka/partitions': got string, want integer"),
        ("kafka.bootstrapServers=kafka", "at '/kafka/bootstrapServers': 'kafka' does not match"),
        ("kafka.securityProtocol=TLS", "at '/kafka/securityProtocol': value must be one of"),
        ("kafka.sasl.mechanism=SCRAM", "at '/kafka/sasl/mechanism': value must be one of"),
        ("cassandra.hosts=null", "at '/cassandra': missing property 'hosts'"),
        ("cassandra.keyspace=my-keyspace", "at '/cassandra/keyspace': 'my-keyspace' does not"),
        (
            "cassandra.consistency=ONE",
            "at '/cassandra/consistency': value must be one of 'LOCAL_QUORUM', 'QUORUM', 'ALL'",
        ),
        ("components.executor.replicas=-1", "at '/components/executor/replicas': minimum"),
        ("defaults.autoscaling.maxReplicas=0", "at '/defaults/autoscaling/maxReplicas': minimum"),
        ("retentionSeconds=0", "at '/retentionSeconds': minimum"),
        ("deadLetterRetentionSeconds=7d", "at '/deadLetterRetentionSeconds': got string, want"),
        ("logging.format=xml", "at '/logging/format': value must be one of 'json', 'console'"),
        ("secrets.eventKeys.value=k", "at '/secrets/eventKeys': additional properties 'value'"),
        ("kafka.bootstrapServer=k:9092", "at '/kafka': additional properties 'bootstrapServer'"),
    ],
)
def test_schema_refuses_bad_values(kube_tools: KubeTools, setting: str, message: str) -> None:
    done = kube_tools.run("helm", "template", "rel", CHART, "--set", setting, check=False)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr, done.stderr
