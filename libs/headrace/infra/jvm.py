"""The `java` binary and the JVM flags both servers share."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from headrace.infra.errors import InfraError


def java_binary() -> str:
    """`$JAVA_HOME/bin/java` if set, else `java` on PATH (Kafka 4 and Cassandra 5 need JDK 17)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise InfraError(
            "`java` is not on PATH; install OpenJDK 17, e.g. apt-get install openjdk-17-jre"
        )
    return found


def heap_flags(max_heap: str) -> list[str]:
    """Heap and GC flags for a small test server: fail fast on OOM instead of limping on.

    No -Xms: the JVM's default initial heap is capped at -Xmx, so any max heap works.
    """
    return [
        f"-Xmx{max_heap}",
        "-XX:+UseG1GC",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
    ]


def classpath(lib_dir: Path) -> str:
    """A wildcard classpath: every jar in `lib_dir`."""
    return f"{lib_dir}/*"
