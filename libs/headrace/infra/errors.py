"""The one error the infra code raises, carrying the log file that explains it."""

from __future__ import annotations

from pathlib import Path

TAIL_LINES = 30
LINE_WIDTH = 400  # JVMs log their whole classpath on one line; the tail should stay readable


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last `lines` lines of a log file, each cut to LINE_WIDTH, or a note it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(line[:LINE_WIDTH] for line in text.splitlines()[-lines:])


class InfraError(RuntimeError):
    """Kafka or Cassandra could not be fetched, started, probed or stopped.

    The message names the log file and quotes its tail, because the first question after a
    failed start on CI is always "what did the JVM say?".
    """

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        if log_path is not None:
            message = f"{message}\nlog: {log_path}\n--- last lines ---\n{log_tail(log_path)}"
        super().__init__(message)
        self.log_path = log_path
