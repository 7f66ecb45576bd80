"""The Kubernetes tools and a local control plane, for the chart's tests (tests/deploy).

`scripts/k8s-tools` builds them once into ~/.cache/headrace/k8s-tools. `ControlPlane` starts a
real etcd, kube-apiserver, kube-controller-manager and kube-scheduler on free loopback ports,
with kwok playing the kubelet of one node: pods are scheduled and reported running (a Job's pods
succeeded), but no container runs. Each test session starts its own, so sessions on one machine
never share objects; it starts in seconds.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from headrace.testing.cluster import die_with_parent
from headrace.testing.sdk_app import free_port

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "headrace"
# The chart's CI value sets (minimal, production, hooks-off), each rendered and installed.
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
TOKEN = "headrace-test-admin"
NODE = """
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, type: kwok}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
"""


class KubeError(Exception):
    """A tool failed, or the control plane did not start; says which and shows its output."""


@dataclass(frozen=True)
class KubeTools:
    """The built tools: helm, kubeconform (with `schemas`), helm-unittest, kubectl, servers."""

    bin: Path
    schemas: Path

    @classmethod
    def build(cls) -> KubeTools:
        """Build what is missing (minutes, once per machine) and find the rest (a second)."""
        script = REPO / "scripts" / "k8s-tools"
        paths = []
        for what in ("bin", "schemas"):
            done = subprocess.run([script, what], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise KubeError(f"scripts/k8s-tools failed:\n{done.stderr[-4000:]}")
            paths.append(Path(done.stdout.strip()))
        return cls(*paths)

    def run(
        self,
        tool: str,
        *args: str | Path,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.bin / tool, *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
        if check and done.returncode != 0:
            command = " ".join([tool, *map(str, args)])
            raise KubeError(f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done


@dataclass
class ControlPlane:
    """etcd, the API server, the controller manager, the scheduler and kwok, in `state`."""

    tools: KubeTools
    state: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def env(self) -> dict[str, str]:
        """What helm and kubectl need to talk to this control plane, and only to it."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.state / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.state / "helm" / "config"),
            "HELM_DATA_HOME": str(self.state / "helm" / "data"),
        }

    def start(self, timeout_s: float = 120.0) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "genrsa", "-out", self.state / "sa.key", "2048"],
            check=True,
            capture_output=True,
        )
        (self.state / "tokens.csv").write_text(f"{TOKEN},admin,admin,system:masters\n")
        etcd_port, peer_port, api_port, kwok_port = (free_port() for _ in range(4))
        self.kubeconfig.write_text(_kubeconfig(f"https://127.0.0.1:{api_port}"))
        self._spawn(
            "etcd",
            f"--data-dir={self.state / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
        )
        self._spawn(
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={self.state / 'certs'}",
            f"--token-auth-file={self.state / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.state / 'sa.key'}",
            f"--service-account-signing-key-file={self.state / 'sa.key'}",
        )
        self._wait_ready(f"https://127.0.0.1:{api_port}/readyz", timeout_s)
        # Whole: without its node-lifecycle controller the node keeps its not-ready taint, and
        # without the others there are no default ServiceAccounts, ReplicaSets or Job pods.
        # Port 0: no serving port, so parallel sessions never collide.
        self._spawn(
            "kube-controller-manager",
            f"--kubeconfig={self.kubeconfig}",
            "--secure-port=0",
            "--leader-elect=false",
            f"--service-account-private-key-file={self.state / 'sa.key'}",
            f"--root-ca-file={self.state / 'certs' / 'apiserver.crt'}",
        )
        self._spawn(
            "kube-scheduler",
            f"--kubeconfig={self.kubeconfig}",
            "--secure-port=0",
            "--leader-elect=false",
        )
        self._spawn(
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.0.0.1/24",
            "--node-ip=10.0.0.1",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{kwok_port}",
        )
        self.kubectl("apply", "-f", "-", input=NODE)
        self.kubectl("wait", "--for=condition=Ready", "node/kwok-node-0", f"--timeout={timeout_s}s")
        # Namespaces get their default ServiceAccount from the controller manager, shortly after.
        self.kubectl(
            "wait",
            "--for=create",
            "serviceaccount/default",
            "--namespace=default",
            f"--timeout={timeout_s}s",
        )

    def stop(self) -> None:
        started = list(reversed(self.processes.values()))
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.tools.run("kubectl", *args, input=input, env=self.env).stdout

    def helm(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.tools.run("helm", *args, env=self.env, check=check)

    def _spawn(self, tool: str, *args: str) -> None:
        log = (self.state / f"{tool}.log").open("ab")
        self.processes[tool] = subprocess.Popen(
            [self.tools.bin / tool, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        log.close()

    def _wait_ready(self, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        headers = {"Authorization": f"Bearer {TOKEN}"}
        while True:
            try:
                if httpx.get(url, headers=headers, verify=False, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            exited = [tool for tool, p in self.processes.items() if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                logs = "\n".join(_tail(self.state / f"{tool}.log") for tool in exited)
                raise KubeError(f"the API server did not get ready ({exited} exited)\n{logs}")
            time.sleep(0.2)


def _kubeconfig(server: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
users:
- name: admin
  user: {{token: {TOKEN}}}
contexts:
- name: local
  context: {{cluster: local, user: admin}}
current-context: local
"""


def _tail(path: Path, chars: int = 3000) -> str:
    return f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}" if path.exists() else ""
