"""The web configuration file of Prometheus' own exporters (exporter-toolkit): TLS and basic auth.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                      # optional
      client_auth_type: RequireAndVerifyClientCert  # optional, default NoClientCert
      min_version: TLS12                           # optional; also max_version
    basic_auth_users:
      prometheus: $2b$12$...                       # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':')

Relative paths are relative to the file's own folder, as in exporter-toolkit.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import ssl
import threading
from dataclasses import dataclass
from typing import Callable

import yaml

from .config import ConfigError

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_KNOWN_TOP = {"tls_server_config", "basic_auth_users", "http_server_config"}


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    authorize: Callable[[dict], bool] | None = None


class BasicAuth:
    """Checks Authorization headers against bcrypt hashes. bcrypt is slow on purpose (~0.2 s); a
    successful pair is remembered by its SHA-256 so that a scrape every few seconds costs nothing."""

    def __init__(self, users: dict[str, str]):
        import bcrypt  # only needed when basic auth is configured

        self._bcrypt = bcrypt
        self._users = {u: h.encode() for u, h in users.items()}
        self._good: set[bytes] = set()
        self._lock = threading.Lock()
        # Unknown users still cost one bcrypt check, so timing does not reveal which users exist.
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(4))

    def __call__(self, environ: dict) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        digest = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(digest, good) for good in self._good):
                return True
        hashed = self._users.get(user)
        try:
            ok = self._bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        except ValueError:  # a malformed hash in the file
            return False
        if ok:
            with self._lock:
                self._good.add(digest)
        return ok


def _path(base: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a file path")
    path = value if os.path.isabs(value) else os.path.join(base, value)
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist or is not a file")
    return path


def _tls_context(tls: dict, base: str) -> ssl.SSLContext:
    # NOTE: exporter-toolkit's cipher_suites and curve_preferences take Go's names, which OpenSSL
    # does not know: refused with a clear error rather than accepted and silently not applied.
    unsupported = set(tls) & {"cipher_suites", "curve_preferences"}
    if unsupported:
        raise ValueError(f"tls_server_config: {sorted(unsupported)} not supported by this exporter (OpenSSL's "
                         "defaults apply); remove them")
    unknown = set(tls) - {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
                          "max_version", "prefer_server_cipher_suites"}
    if unknown:
        raise ValueError(f"tls_server_config: unknown keys {sorted(unknown)}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _tls_version(tls, "min_version", "TLS12")
    if "max_version" in tls:
        ctx.maximum_version = _tls_version(tls, "max_version", None)
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise ValueError("tls_server_config.prefer_server_cipher_suites must be true or false")
    if not prefer:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(_path(base, tls.get("cert_file")), _path(base, tls.get("key_file")))
    except ssl.SSLError as exc:
        raise ValueError(f"tls_server_config: cert_file/key_file cannot be loaded: {exc.reason}") from None
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in CLIENT_AUTH:
        raise ValueError(f"tls_server_config.client_auth_type must be one of {sorted(CLIENT_AUTH)}")
    ctx.verify_mode = CLIENT_AUTH[auth_type]
    if tls.get("client_ca_file"):
        ctx.load_verify_locations(_path(base, tls["client_ca_file"]))
    elif auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise ValueError(f"tls_server_config: client_auth_type {auth_type} needs client_ca_file")
    return ctx


def _tls_version(tls: dict, key: str, default: str | None) -> ssl.TLSVersion:
    version = TLS_VERSIONS.get(tls.get(key, default))
    if version is None:
        raise ValueError(f"tls_server_config.{key} must be one of {sorted(TLS_VERSIONS)}")
    return version


def load_web_config(path: str | None) -> WebConfig:
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
        if not isinstance(data, dict):
            raise ValueError("the top level must be a mapping")
        unknown = set(data) - _KNOWN_TOP
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        base = os.path.dirname(os.path.abspath(path))
        ctx = _tls_context(data["tls_server_config"], base) if data.get("tls_server_config") else None
        users = data.get("basic_auth_users") or {}
        if not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
            raise ValueError("basic_auth_users must map user names to bcrypt hashes")
        for user, hashed in users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(f"basic_auth_users.{user}: not a bcrypt hash")
        return WebConfig(ctx, BasicAuth({str(u): h for u, h in users.items()}) if users else None)
    except (OSError, yaml.YAMLError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"web config file {path}: {exc}") from None
