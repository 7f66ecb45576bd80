"""The chart on a real API server (etcd, kube-apiserver, controller manager and scheduler, with
kwok as the kubelet of one node): what `helm install`, `upgrade`, `rollback` and `uninstall` do
to the objects, and the API server accepting every rendered value set."""

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from headrace.testing.kube import CHART, CI_VALUES, ControlPlane

pytestmark = pytest.mark.kube

MINIMAL = CHART / "ci" / "minimal-values.yaml"
COMPONENTS = ("ingest", "runner", "scheduler", "executor")
# Every kind the chart makes, for "nothing left behind" (all: pods, services, deployments,
# replica sets, jobs, HPAs).
KINDS = "all,configmaps,secrets,serviceaccounts,poddisruptionbudgets,networkpolicies"


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A namespace of the test's own, with the keys Secret that ci/minimal-values.yaml names."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    control_plane.kubectl(
        "wait", "--for=create", "serviceaccount/default", f"--namespace={name}", "--timeout=60s"
    )
    control_plane.kubectl(
        "create",
        "secret",
        "generic",
        "headrace-keys",
        f"--namespace={name}",
        "--from-literal=event-keys=test-key=default",
        "--from-literal=signing-key=signkey-test-0123456789abcdef",
    )
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false")


def _get(plane: ControlPlane, namespace: str, *args: str) -> Any:
    return json.loads(plane.kubectl("get", *args, f"--namespace={namespace}", "--output=json"))


def _eventually(probe: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)
    return value


def _serving_template_hashes(plane: ControlPlane, namespace: str, release: str) -> dict[str, str]:
    """Per component, the pod-template-hash of the one ReplicaSet that has its pods; empty while
    a rollout still has pods in two."""
    sets = _get(plane, namespace, "replicasets", f"--selector=app.kubernetes.io/instance={release}")
    hashes: dict[str, str] = {}
    for item in sets["items"]:
        if item["spec"]["replicas"] > 0:
            component = item["metadata"]["labels"]["app.kubernetes.io/component"]
            if component in hashes:
                return {}
            hashes[component] = item["metadata"]["labels"]["pod-template-hash"]
    return hashes


def _install(plane: ControlPlane, namespace: str, release: str) -> None:
    plane.helm(
        "install",
        release,
        CHART,
        f"--namespace={namespace}",
        "--values",
        MINIMAL,
        "--wait",
        "--timeout=180s",
    )


def test_install_creates_every_object_and_runs_the_migration(
    control_plane: ControlPlane, namespace: str
) -> None:
    _install(control_plane, namespace, "hr")
    manifest = control_plane.helm("get", "manifest", "hr", f"--namespace={namespace}").stdout
    live = json.loads(
        control_plane.kubectl(
            "get", "--filename=-", f"--namespace={namespace}", "--output=json", input=manifest
        )
    )["items"]
    kinds = sorted(item["kind"] for item in live)
    assert kinds == sorted(
        ["ConfigMap", "Service", "Service", "ServiceAccount", *["Deployment"] * 4]
    )
    for deployment in (item for item in live if item["kind"] == "Deployment"):
        assert deployment["status"]["availableReplicas"] == deployment["spec"]["replicas"] == 1
    pods = _get(control_plane, namespace, "pods", "--selector=app.kubernetes.io/instance=hr")
    assert {pod["spec"]["nodeName"] for pod in pods["items"]} == {"kwok-node-0"}
    assert sorted(
        p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods["items"]
    ) == sorted(COMPONENTS)
    # The hook Job ran to completion and was deleted; the scheduler's events remain.
    events = _get(control_plane, namespace, "events")["items"]
    scheduled = {e["involvedObject"]["name"] for e in events if e["reason"] == "Scheduled"}
    assert any(name.startswith("hr-headrace-migrate-") for name in scheduled), scheduled
    completed = {
        e["involvedObject"]["name"]
        for e in events
        if e["involvedObject"]["kind"] == "Job" and e["reason"] == "Completed"
    }
    assert completed == {"hr-headrace-migrate"}
    assert _get(control_plane, namespace, "jobs")["items"] == []


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda path: path.name)
def test_api_server_accepts_the_rendered_chart(
    control_plane: ControlPlane, namespace: str, values: Path
) -> None:
    # No Prometheus Operator here: its ServiceMonitor CRD is not installed.
    rendered = control_plane.helm(
        "template",
        "rel",
        CHART,
        f"--namespace={namespace}",
        "--values",
        values,
        "--set",
        "metrics.serviceMonitor.enabled=false",
    ).stdout
    out = control_plane.kubectl(
        "apply", "--dry-run=server", f"--namespace={namespace}", "--filename=-", input=rendered
    )
    assert out.count("(server dry run)") == rendered.count("\nkind: ")


def test_upgrade_rolls_the_deployments_rollback_returns_them_uninstall_removes_all(
    control_plane: ControlPlane, namespace: str
) -> None:
    _install(control_plane, namespace, "up")
    first = _eventually(
        lambda: _serving_template_hashes(control_plane, namespace, "up"), "the first ReplicaSets"
    )
    assert sorted(first) == sorted(COMPONENTS)

    # A setting in the ConfigMap changes the pods' checksum annotation: every service rolls.
    control_plane.helm(
        "upgrade",
        "up",
        CHART,
        f"--namespace={namespace}",
        "--values",
        MINIMAL,
        "--set",
        "kafka.partitions=24",
        "--wait",
        "--timeout=180s",
    )
    config = _get(control_plane, namespace, "configmap", "up-headrace")
    assert config["data"]["HEADRACE_PARTITIONS"] == "24"
    second = _eventually(
        lambda: (h := _serving_template_hashes(control_plane, namespace, "up")) != first and h,
        "the new ReplicaSets to take over",
    )
    assert sorted(second) == sorted(COMPONENTS)
    assert all(second[c] != first[c] for c in COMPONENTS), (first, second)

    control_plane.helm("rollback", "up", "1", f"--namespace={namespace}", "--wait")
    third = _eventually(
        lambda: (h := _serving_template_hashes(control_plane, namespace, "up")) == first and h,
        "the first ReplicaSets to serve again",
    )
    assert third == first
    config = _get(control_plane, namespace, "configmap", "up-headrace")
    assert config["data"]["HEADRACE_PARTITIONS"] == "12"

    control_plane.helm("uninstall", "up", f"--namespace={namespace}", "--wait")

    def leftovers() -> list[str]:
        names = control_plane.kubectl(
            "get",
            KINDS,
            f"--namespace={namespace}",
            "--output=name",
            "--selector=app.kubernetes.io/instance=up",
        ).split()
        releases = control_plane.kubectl(
            "get",
            "secrets",
            f"--namespace={namespace}",
            "--output=name",
            "--selector=owner=helm,name=up",
        ).split()
        return names + releases

    _eventually(lambda: leftovers() == [], "every object of the release to go")
    # Only what the user made before installing is left.
    secrets = _get(control_plane, namespace, "secrets")["items"]
    assert [s["metadata"]["name"] for s in secrets] == ["headrace-keys"]
