"""Resolve a Java server's runtime classpath from Maven Central into the jar cache, once.

Neither Kafka nor Cassandra is packaged for Debian, PyPI or npm, but both publish their server
jars to Maven Central. A throwaway POM that depends on the server artifact, plus the dependency
plugin's `copy-dependencies`, gives a `lib/` directory that `java -cp 'lib/*'` can run.

Each component gets its own directory, named after its coordinates' hash, because Kafka and
Cassandra pin different netty, jackson and guava versions and must never share a classpath.
A directory appears only complete (it is renamed into place after `mvn` succeeds), so an
interrupted fetch is simply redone.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from headrace.infra.errors import InfraError

log = logging.getLogger(__name__)

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MVN_TIMEOUT_S = 900
ATTEMPTS = 2  # Central or a proxy can drop a connection on a cold fetch; one retry covers it.


@dataclass(frozen=True)
class Fetched:
    """A resolved classpath directory and how long resolving it took (None: it was cached)."""

    lib_dir: Path
    seconds: float | None


def pom_xml(name: str, coordinates: Sequence[str]) -> str:
    """A packaging=pom project whose only purpose is to declare `coordinates` (g:a:v)."""
    deps = []
    for coordinate in coordinates:
        group, artifact, version = coordinate.split(":")
        deps.append(
            "    <dependency>"
            f"<groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    body = "\n".join(deps)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>headrace.infra</groupId><artifactId>{name}-classpath</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{body}
  </dependencies>
</project>
"""


def lib_dir_for(cache_dir: Path, name: str, coordinates: Sequence[str]) -> Path:
    """Where the classpath of `coordinates` lives; a new version or jar means a new directory."""
    digest = hashlib.sha256(pom_xml(name, coordinates).encode()).hexdigest()[:12]
    return cache_dir / f"{name}-{digest}" / "lib"


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Serialize fetches: parallel `mvn` runs racing on a cold ~/.m2 can corrupt downloads."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_mvn(mvn: str, project_dir: Path, output_dir: Path, log_path: Path) -> None:
    command = [
        mvn,
        "-B",
        "-q",
        "-ntp",
        "-Dstyle.color=never",
        "-f",
        str(project_dir / "pom.xml"),
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output_dir}",
    ]
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(
            command,
            cwd=project_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=MVN_TIMEOUT_S,
            check=False,
        )
    if result.returncode != 0:
        raise InfraError(f"mvn exited with {result.returncode}", log_path)


def resolve(cache_dir: Path, name: str, coordinates: Sequence[str]) -> Fetched:
    """Return the classpath directory of `coordinates`, fetching it first if it is missing."""
    lib_dir = lib_dir_for(cache_dir, name, coordinates)
    if lib_dir.is_dir():
        return Fetched(lib_dir, None)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError(
            "`mvn` (Apache Maven) is not on PATH; install it, e.g. apt-get install maven"
        )
    with _locked(cache_dir / ".fetch.lock"):
        if lib_dir.is_dir():  # another process fetched it while we waited for the lock
            return Fetched(lib_dir, None)
        log_path = cache_dir / f"{name}-fetch.log"
        log_path.write_text("")
        started = time.monotonic()
        for attempt in range(1, ATTEMPTS + 1):
            with tempfile.TemporaryDirectory(dir=cache_dir, prefix=f".{name}-") as tmp:
                project_dir = Path(tmp)
                (project_dir / "pom.xml").write_text(pom_xml(name, coordinates))
                staging = project_dir / "lib"
                try:
                    _run_mvn(mvn, project_dir, staging, log_path)
                except (InfraError, subprocess.TimeoutExpired) as error:
                    if attempt == ATTEMPTS:
                        raise InfraError(
                            f"fetching {name} jars from Maven Central failed twice: {error}",
                            log_path,
                        ) from error
                    log.warning("fetching %s jars failed (%s); retrying once", name, error)
                    continue
                lib_dir.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(lib_dir)
                break
        seconds = time.monotonic() - started
        log.info("fetched %s jars into %s in %.1f s", name, lib_dir, seconds)
        return Fetched(lib_dir, seconds)
