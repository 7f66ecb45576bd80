"""A throwaway certificate authority and a server certificate for the secured test profile,
made with the `openssl` command: the CA signs one certificate for the loopback address that
both the secured Kafka and the secured Cassandra present."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from headrace.infra.errors import InfraError

DAYS = "3650"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # what clients verify the servers with
    cert: Path  # the server's certificate (PEM)
    key: Path  # its unencrypted PKCS#8 key (PEM)
    keystore: Path  # key and certificate in one PEM file, as Kafka and Cassandra read it


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    if result.returncode != 0:
        raise InfraError(f"openssl {args[0]} failed: {result.stderr.decode(errors='replace')}")


def server_tls(directory: Path, host: str) -> TlsFiles:
    """The CA and the certificate for `host` in `directory`, made once and kept."""
    files = TlsFiles(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "keystore.pem",
    )
    if files.keystore.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        ca_key,
        "-out",
        files.ca,
        "-days",
        DAYS,
        "-subj",
        "/CN=headrace test CA",
    )
    request = directory / "server.csr"
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        files.key,
        "-out",
        request,
        "-subj",
        f"/CN={host}",
    )
    extensions = directory / "server.ext"
    extensions.write_text(f"subjectAltName=IP:{host},DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        request,
        "-CA",
        files.ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        files.cert,
        "-days",
        DAYS,
        "-extfile",
        extensions,
    )
    files.keystore.write_text(files.key.read_text() + files.cert.read_text())
    return files
