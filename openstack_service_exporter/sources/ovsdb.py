"""One-shot reads of an OVSDB server (RFC 7047), such as OVN's northbound and southbound databases:
one connection, one `transact` of `select` operations, its rows, and the connection closed, all by a
deadline. Connections are the `ovs` library's streams (the library Neutron itself uses through
ovsdbapp), with its connection strings: tcp:IP:PORT, ssl:IP:PORT (a private key, a certificate and a
CA certificate) and unix:FILE.

The reply is decoded by the standard library's json: the `ovs` package's own parser is written in
Python (its C parser comes only with a build against libopenvswitch) and takes seconds on a reply of
a few megabytes, where json takes milliseconds.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

try:
    import ovs.poller
    import ovs.stream
except ImportError:  # the optional extra [ovn]: only ML2/OVN clouds need it
    ovs = None

# ovs.stream keeps the SSL files in class attributes, read when an ssl: stream is opened: each
# opening sets them under this lock, so two databases with different files can be read at once.
_SSL_LOCK = threading.Lock()
_CHUNK = 1 << 20
MISSING = (
    "the Python package ovs (Open vSwitch's OVSDB library) is not installed: "
    "pip install 'openstack-service-exporter[ovn]'"
)


class OvsdbError(Exception):
    """A database that did not answer, or answered with an error; the message names no secret."""


@dataclass(frozen=True)
class Remote:
    """How to reach one database: its connection strings (tried in order until one answers, as a
    list of ovsdb-server cluster members is) and, for ssl:, the PEM files."""

    connections: tuple[str, ...]
    private_key: str = ""
    certificate: str = ""
    ca_cert: str = ""


@dataclass(frozen=True)
class Select:
    """One table's rows, only the named columns (`_uuid` is always there)."""

    table: str
    columns: tuple[str, ...]

    def op(self) -> dict:
        return {"op": "select", "table": self.table, "where": [], "columns": ["_uuid", *self.columns]}


def _remaining_ms(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


def _open(connection: str, remote: Remote) -> tuple[int, ovs.stream.Stream | None]:
    if not connection.startswith("ssl:"):
        return ovs.stream.Stream.open(connection)
    for what in ("private_key", "certificate", "ca_cert"):
        if not getattr(remote, what):
            raise OvsdbError(f"{connection}: an ssl: connection needs a {what.replace('_', ' ')} file")
    with _SSL_LOCK:
        ovs.stream.Stream.ssl_set_private_key_file(remote.private_key)
        ovs.stream.Stream.ssl_set_certificate_file(remote.certificate)
        ovs.stream.Stream.ssl_set_ca_cert_file(remote.ca_cert)
        try:
            return ovs.stream.Stream.open(connection)
        except (OSError, ValueError) as exc:  # unreadable PEM files: the SSL context fails at opening
            raise OvsdbError(f"{connection}: {type(exc).__name__}: {exc}") from None


def _wait(stream: ovs.stream.Stream, deadline: float, kind: int) -> None:
    poller = ovs.poller.Poller()
    stream.wait(poller, kind)
    poller.timer_wait(_remaining_ms(deadline))
    poller.block()


def _connect(stream: ovs.stream.Stream, deadline: float) -> int:
    while True:
        error = stream.connect()
        if error != errno.EAGAIN:
            return error
        if time.monotonic() >= deadline:
            return errno.ETIMEDOUT
        _wait(stream, deadline, ovs.stream.Stream.W_CONNECT)


def _send(stream: ovs.stream.Stream, data: bytes, deadline: float) -> None:
    while data:
        sent = stream.send(data)
        if sent >= 0:
            data = data[sent:]
        elif sent != -errno.EAGAIN:
            raise OvsdbError(f"send: {os.strerror(-sent)}")
        elif time.monotonic() >= deadline:
            raise TimeoutError
        else:
            _wait(stream, deadline, ovs.stream.Stream.W_SEND)


def _messages(stream: ovs.stream.Stream, deadline: float):
    """The JSON-RPC messages the server sends (they come one after another, with no separator)."""
    decoder = json.JSONDecoder()
    buffer = b""
    while True:
        error, data = stream.recv(_CHUNK)
        if error == errno.EAGAIN:
            if time.monotonic() >= deadline:
                raise TimeoutError
            _wait(stream, deadline, ovs.stream.Stream.W_RECV)
            continue
        if error:
            raise OvsdbError(f"receive: {os.strerror(error)}")
        if not data:
            raise OvsdbError("the server closed the connection")
        buffer += data
        # A message is complete only when it ends in '}': try to decode only then (a big reply
        # arrives in many chunks, most of which end elsewhere).
        while buffer.rstrip().endswith(b"}"):
            text = buffer.decode("utf-8").lstrip()
            try:
                message, end = decoder.raw_decode(text)
            except json.JSONDecodeError:
                break
            buffer = text[end:].encode("utf-8")
            yield message


def _transact(stream: ovs.stream.Stream, database: str, ops: list[dict], deadline: float) -> list:
    request = {"method": "transact", "params": [database, *ops], "id": 0}
    _send(stream, json.dumps(request).encode(), deadline)
    for message in _messages(stream, deadline):
        if message.get("method") == "echo":  # the server's keepalive: answered as it asks
            _send(
                stream,
                json.dumps({"result": message.get("params"), "error": None, "id": message.get("id")}).encode(),
                deadline,
            )
            continue
        if message.get("id") != 0:
            continue
        if message.get("error") is not None:
            raise OvsdbError(f"{database}: {message['error']}")
        return message["result"]
    raise OvsdbError("no reply")  # unreachable: _messages ends only by raising


def select(remote: Remote, database: str, selects: Sequence[Select], deadline: float) -> list[list[dict]]:
    """Each Select's rows (dicts of OVSDB JSON values), in one transaction on the first connection
    that answers by `deadline` (monotonic). Raises OvsdbError or TimeoutError."""
    if ovs is None:
        raise OvsdbError(MISSING)
    errors = []
    for connection in remote.connections:
        if time.monotonic() >= deadline:
            break
        error, stream = _open(connection, remote)
        if error:
            errors.append(f"{connection}: {os.strerror(error)}")
            continue
        try:
            error = _connect(stream, deadline)
            if error == errno.ETIMEDOUT:
                raise TimeoutError
            if error:
                errors.append(f"{connection}: {os.strerror(error)}")
                continue
            results = _transact(stream, database, [s.op() for s in selects], deadline)
        except OvsdbError as exc:
            errors.append(f"{connection}: {exc}")
            continue
        finally:
            stream.close()
        failed = [r["error"] + (f" ({r['details']})" if r.get("details") else "") for r in results if "error" in r]
        if failed:
            raise OvsdbError(f"{connection}: {database}: {'; '.join(failed)}")
        return [r["rows"] for r in results[: len(selects)]]
    if not errors:
        raise TimeoutError
    raise OvsdbError("; ".join(errors))


# OVSDB's JSON notation (RFC 7047, 5.1): sets and maps are tagged unless they hold one atom.


def atom_set(value) -> list:
    """A set column's items ([] for the empty set)."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1]
    return [value]


def uuid_of(value) -> str:
    return value[1]


def as_map(value) -> dict:
    return dict(value[1])
