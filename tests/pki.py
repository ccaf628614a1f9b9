"""A private certificate authority for the TLS tests (the exporter's web server, OVN's ssl: connections),
made by openssl in the test's folder."""

from __future__ import annotations

import pathlib
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Pki:
    """A CA, and a server's and a client's key and certificate signed by it (PEM files)."""

    ca_cert: pathlib.Path
    server_key: pathlib.Path
    server_cert: pathlib.Path
    client_key: pathlib.Path
    client_cert: pathlib.Path


def make_pki(folder: pathlib.Path, name: str = "ovn") -> Pki:
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca-cert.pem",
    )
    for who in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name} {who}",
            "-keyout",
            f"{who}-key.pem",
            "-out",
            f"{who}.csr",
        )
        (folder / f"{who}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run(
            "x509",
            "-req",
            "-extfile",
            f"{who}.ext",
            "-in",
            f"{who}.csr",
            "-CA",
            "ca-cert.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            f"{who}-cert.pem",
        )
    return Pki(
        *(folder / f for f in ("ca-cert.pem", "server-key.pem", "server-cert.pem", "client-key.pem", "client-cert.pem"))
    )
