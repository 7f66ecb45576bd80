"""A service in a network namespace of its own, reaching Kafka, Cassandra and the app (and
reached on its own port) only through relays the test can stall: a network cut that resets
nothing and uses no other address (issue 16's fault schedule).

`python -m headrace.testing.netns DIR OUT_PORTS IN_PORT -- COMMAND...` (OUT_PORTS: "p1,p2"):
- forks a relay in the host's namespace: it serves DIR/out-P (a unix socket) for each OUT port
  P, connecting to 127.0.0.1:P, and listens on 127.0.0.1:IN_PORT, forwarding to DIR/in;
- enters a new network namespace, brings its loopback up and forks a relay there: it listens
  on 127.0.0.1:P for each OUT port, forwarding to DIR/out-P, and serves DIR/in, connecting to
  127.0.0.1:IN_PORT inside;
- execs COMMAND, which sees Kafka, Cassandra and the app at their usual addresses (Kafka's
  advertised address included) and serves its usual port. Both relays die with it.

Unix sockets join the two namespaces because a path is reachable from either. The host relay
stalls every connection to the ports listed in DIR/cut (one a line) while they are listed: no
byte forwarded either way and new connections held, as a partition that then heals."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
CUT_POLL_S = 0.05
CHUNK = 65536

# ("tcp", port) or ("unix", path)
Endpoint = tuple[str, int | str]


@dataclass(frozen=True)
class Route:
    listen: Endpoint
    target: Endpoint
    port: int  # the port whose cut stalls this route; 0: never stalled


async def _open(target: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    kind, where = target
    if kind == "tcp":
        return await asyncio.open_connection("127.0.0.1", int(where))
    return await asyncio.open_unix_connection(str(where))


async def _serve(route: Route, gates: dict[int, asyncio.Event]) -> asyncio.Server:
    gate = gates.setdefault(route.port, asyncio.Event())
    if route.port == 0:
        gate.set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await gate.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await gate.wait()  # a new connection during a cut waits, unanswered
        try:
            up_reader, up_writer = await _open(route.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    kind, where = route.listen
    if kind == "tcp":
        return await asyncio.start_server(handle, "127.0.0.1", int(where), reuse_address=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(str(where))
    return await asyncio.start_unix_server(handle, str(where))


def _cut_ports(cut_file: Path) -> set[int]:
    # A few bytes on a local disk: read in the loop, as blocking as a log line.
    try:
        return {int(line) for line in cut_file.read_text().split()}
    except (FileNotFoundError, ValueError):
        return set()


async def _watch_cuts(cut_file: Path, gates: dict[int, asyncio.Event]) -> None:
    while True:
        cut = _cut_ports(cut_file)
        for port, gate in gates.items():
            if port and port in cut:
                gate.clear()
            elif port:
                gate.set()
        await asyncio.sleep(CUT_POLL_S)


async def _relay(routes: list[Route], cut_file: Path | None, ready: int) -> None:
    gates: dict[int, asyncio.Event] = {}
    servers = [await _serve(route, gates) for route in routes]
    if cut_file is None:
        for gate in gates.values():
            gate.set()
    os.write(ready, b"1")
    os.close(ready)
    try:
        if cut_file is not None:
            await _watch_cuts(cut_file, gates)
        else:
            await asyncio.Event().wait()
    finally:
        for server in servers:
            server.close()


def _fork_relay(routes: list[Route], cut_file: Path | None) -> None:
    """A child relaying `routes`, killed when this process (the service, after exec) dies;
    returns once it listens."""
    parent = os.getpid()
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        try:
            os.close(read_end)
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the service died before the line above
                os._exit(0)
            asyncio.run(_relay(routes, cut_file, write_end))
        finally:
            os._exit(0)
    os.close(write_end)
    if os.read(read_end, 1) != b"1":
        raise SystemExit("the relay did not start")
    os.close(read_end)


def main(argv: list[str]) -> None:
    directory, out_text, in_text, dash, *command = argv
    assert dash == "--" and command, "usage: DIR OUT_PORTS IN_PORT -- COMMAND..."
    where = Path(directory)
    where.mkdir(parents=True, exist_ok=True)
    out_ports = [int(p) for p in out_text.split(",") if p]
    in_port = int(in_text)
    inbound = str(where / "in")
    _fork_relay(
        [Route(("unix", str(where / f"out-{p}")), ("tcp", p), p) for p in out_ports]
        + [Route(("tcp", in_port), ("unix", inbound), 0)],
        where / "cut",
    )
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
        raise SystemExit(f"unshare(CLONE_NEWNET) failed: errno {ctypes.get_errno()}")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    _fork_relay(
        [Route(("tcp", p), ("unix", str(where / f"out-{p}")), 0) for p in out_ports]
        + [Route(("unix", inbound), ("tcp", in_port), 0)],
        None,
    )
    os.execvp(command[0], command)


def set_cut(directory: Path, ports: set[int]) -> None:
    """Stall (or, with no ports, resume) the service's connections to `ports`."""
    part = directory / "cut.new"
    part.write_text("".join(f"{p}\n" for p in sorted(ports)))
    part.replace(directory / "cut")


def command(directory: Path, out_ports: list[int], in_port: int) -> list[str]:
    """The prefix that runs a command in its own namespace, relayed as above."""
    ports = ",".join(str(p) for p in out_ports)
    module = "headrace.testing.netns"
    return [sys.executable, "-m", module, str(directory), ports, str(in_port), "--"]


if __name__ == "__main__":
    main(sys.argv[1:])
