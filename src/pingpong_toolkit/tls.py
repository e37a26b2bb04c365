"""A throwaway CA and a certificate for 127.0.0.1 signed by it (openssl, one day)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pingpong_toolkit.commands import run


@dataclass(frozen=True)
class Certificates:
    ca: Path
    ca_key: Path
    cert: Path  # for IP:127.0.0.1
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """Real certificates, so clients verify them as in production (no ``insecure``)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = Certificates(*(directory / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key")))
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=test CA", "-keyout", str(files.ca_key), "-out", str(files.ca)])  # fmt: skip
    csr = directory / "cert.csr"
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(files.key), "-out", str(csr)])  # fmt: skip
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(files.ca),
         "-CAkey", str(files.ca_key), "-CAcreateserial", "-days", "1",
         "-extfile", str(ext), "-out", str(files.cert)])  # fmt: skip
    return files
