"""A throwaway certificate authority and its certificates for the secured test profile, made
with the `openssl` command: one server certificate for the loopback address that both the
secured Kafka and the secured Cassandra present, and one client certificate for Kafka's
listener that requires one."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from headrace.infra.errors import InfraError

DAYS = "3650"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # what each side verifies the other with
    cert: Path  # the server's certificate (PEM)
    key: Path  # its unencrypted PKCS#8 key (PEM)
    keystore: Path  # key and certificate in one PEM file, as Kafka and Cassandra read it
    client_cert: Path  # a client's certificate (PEM), signed by the same CA
    client_key: Path


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    if result.returncode != 0:
        raise InfraError(f"openssl {args[0]} failed: {result.stderr.decode(errors='replace')}")


def _signed(directory: Path, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    """A key and a certificate for `subject`, signed by the CA in `directory`."""
    key, cert, request = (directory / f"{name}{suffix}" for suffix in (".key", ".pem", ".csr"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", request,
             "-subj", subject)  # fmt: skip
    extfile = directory / f"{name}.ext"
    extfile.write_text(extensions)
    _openssl("x509", "-req", "-in", request, "-CA", directory / "ca.pem",
             "-CAkey", directory / "ca.key", "-CAcreateserial", "-out", cert,
             "-days", DAYS, "-extfile", extfile)  # fmt: skip
    return cert, key


def server_tls(directory: Path, host: str) -> TlsFiles:
    """The CA and the certificates in `directory`, made once and kept."""
    files = TlsFiles(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
        keystore=directory / "keystore.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    if files.keystore.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory / "ca.key",
             "-out", files.ca, "-days", DAYS, "-subj", "/CN=headrace test CA")  # fmt: skip
    _signed(directory, "client", "/CN=headrace", "extendedKeyUsage=clientAuth\n")
    _signed(directory, "server", f"/CN={host}", f"subjectAltName=IP:{host},DNS:localhost\n")
    # Written last: its existence says every file is there.
    files.keystore.write_text(files.key.read_text() + files.cert.read_text())
    return files
