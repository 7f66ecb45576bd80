"""The chart's tests: the Kubernetes tools (built once by scripts/k8s-tools) and a local control
plane, one per test session, started at the first test that needs it."""

from collections.abc import Iterator

import pytest

from headrace.testing.kube import ControlPlane, KubeError, KubeTools


@pytest.fixture(scope="session")
def kube_tools() -> KubeTools:
    """A tool that cannot be built fails the tests that need it: never a skip."""
    try:
        return KubeTools.build()
    except KubeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def control_plane(
    kube_tools: KubeTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    plane = ControlPlane(kube_tools, tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start()
    except (KubeError, OSError) as error:
        plane.stop()
        pytest.fail(f"the control plane did not start: {error}", pytrace=False)
    yield plane
    plane.stop()
