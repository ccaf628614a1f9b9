"""The web configuration file of Prometheus' own exporters (exporter-toolkit): TLS and basic auth.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                      # optional
      client_auth_type: RequireAndVerifyClientCert  # optional, default NoClientCert
      min_version: TLS12                           # optional; also max_version
    basic_auth_users:
      prometheus: $2b$12$...                       # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':')
    http_server_config:
      headers:                                     # added to every answer
        Strict-Transport-Security: max-age=31536000

Relative paths are relative to the file's own folder, as in exporter-toolkit. What exporter-toolkit
would refuse is refused at start (one line), and so is what it would do but this exporter cannot:
nothing is accepted and then ignored.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import yaml

from .basicauth import BasicAuth
from .config import ConfigError

# exporter-toolkit's client_auth_type (web/tls_config.go, ConfigToTLSConfig) -> Go's tls.ClientAuthType.
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go's RequestClientCert and RequireAnyClientCert take a client certificate without verifying it;
# OpenSSL, as Python exposes it, verifies every certificate it asks for (with no CA, none passes).
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# exporter-toolkit's extraHTTPHeaders (web/handler.go): the headers it lets a web config add, and the
# values allowed where they are an enumeration.
EXTRA_HEADERS = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_KNOWN_TOP = {"tls_server_config", "basic_auth_users", "http_server_config"}


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    authorize: BasicAuth | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _UniqueKeys(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice (a user listed twice) is an error, not the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"keys given twice: {duplicates}")
        return super().construct_mapping(node, deep)


def _path(base: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a file path")
    path = value if os.path.isabs(value) else os.path.join(base, value)
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist or is not a file")
    return path


def _tls_context(tls: dict[str, Any], base: str) -> ssl.SSLContext:
    # NOTE: exporter-toolkit's cipher_suites and curve_preferences take Go's names, which OpenSSL
    # does not know: refused with a clear error rather than accepted and silently not applied.
    unsupported = set(tls) & {"cipher_suites", "curve_preferences"}
    if unsupported:
        raise ValueError(
            f"tls_server_config: {sorted(unsupported)} not supported by this exporter (OpenSSL's "
            "defaults apply); remove them"
        )
    unknown = set(tls) - {
        "cert_file",
        "key_file",
        "client_ca_file",
        "client_auth_type",
        "min_version",
        "max_version",
        "prefer_server_cipher_suites",
    }
    if unknown:
        raise ValueError(f"tls_server_config: unknown keys {sorted(unknown)}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _tls_version(tls, "min_version", "TLS12")
    if "max_version" in tls:
        ctx.maximum_version = _tls_version(tls, "max_version", None)
        if ctx.maximum_version < ctx.minimum_version:
            raise ValueError(
                f"tls_server_config: max_version {tls['max_version']} is below min_version "
                f"{tls.get('min_version', 'TLS12')}"
            )
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise ValueError("tls_server_config.prefer_server_cipher_suites must be true or false")
    if not prefer:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(_path(base, tls.get("cert_file")), _path(base, tls.get("key_file")))
    except ssl.SSLError as exc:
        raise ValueError(f"tls_server_config: cert_file/key_file cannot be loaded: {exc.reason}") from None
    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type in UNVERIFIED_CLIENT_AUTH:
        raise ValueError(
            f"tls_server_config.client_auth_type {auth_type} (a client certificate taken without "
            "verification) cannot be done with OpenSSL here; use VerifyClientCertIfGiven or "
            "RequireAndVerifyClientCert with client_ca_file"
        )
    if auth_type not in CLIENT_AUTH:
        raise ValueError(f"tls_server_config.client_auth_type must be one of {sorted(CLIENT_AUTH)}")
    ctx.verify_mode = CLIENT_AUTH[auth_type]
    if tls.get("client_ca_file"):
        if auth_type == "NoClientCert":  # exporter-toolkit's own refusal
            raise ValueError("tls_server_config: client_ca_file is given without a client_auth_type")
        ctx.load_verify_locations(_path(base, tls["client_ca_file"]))
    elif auth_type != "NoClientCert":
        raise ValueError(f"tls_server_config: client_auth_type {auth_type} needs client_ca_file")
    return ctx


def _tls_version(tls: dict[str, Any], key: str, default: str | None) -> ssl.TLSVersion:
    value: Any = tls.get(key, default)  # any YAML value, or None
    version = TLS_VERSIONS.get(value)
    if version is None:
        raise ValueError(f"tls_server_config.{key} must be one of {sorted(TLS_VERSIONS)}")
    return version


def load_web_config(path: str | None) -> WebConfig:
    if not path:
        return WebConfig()
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_UniqueKeys) or {}
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
        auth = BasicAuth({str(u): h for u, h in users.items()}) if users else None
        return WebConfig(ctx, auth, _http_server_config(data.get("http_server_config") or {}))
    except (OSError, yaml.YAMLError, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise ConfigError(f"web config file {path}: {exc}") from None


def _http_server_config(http: object) -> dict[str, str]:
    """The headers to add to every answer. exporter-toolkit's http2 (on by default there) is taken
    when false: this server speaks HTTP/1.1 only, and says so rather than ignore `http2: true`."""
    if not isinstance(http, dict):
        raise ValueError("http_server_config must be a mapping")
    unknown = set(http) - {"headers", "http2"}
    if unknown:
        raise ValueError(f"http_server_config: keys {sorted(unknown)} not supported by this exporter")
    if http.get("http2", False) is not False:
        raise ValueError("http_server_config.http2: this exporter serves HTTP/1.1 only; set it to false")
    headers = http.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("http_server_config.headers must map header names to values")
    for name, value in headers.items():
        if name not in EXTRA_HEADERS:
            raise ValueError(
                f"http_server_config.headers: {name!r} cannot be configured (one of {sorted(EXTRA_HEADERS)})"
            )
        allowed = EXTRA_HEADERS[name]
        if not isinstance(value, str) or (allowed and value not in allowed) or "\n" in value or "\r" in value:
            raise ValueError(
                f"http_server_config.headers.{name}: invalid value {value!r}"
                + (f" (one of {list(allowed)})" if allowed else "")
            )
    return dict(headers)
