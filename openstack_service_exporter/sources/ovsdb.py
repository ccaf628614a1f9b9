"""Reads of an OVSDB server (RFC 7047), such as OVN's northbound and southbound databases, through a
maintained monitor: one connection per database, kept by a background thread, on which the server
sends the watched tables once and then every change to them, as Neutron's own ovsdbapp IDL does.
Connections are the `ovs` library's streams (the library Neutron itself uses through ovsdbapp), with
its connection strings: tcp:IP:PORT, ssl:IP:PORT (a private key, a certificate and a CA certificate)
and unix:FILE, tried in order until one answers.

Why a monitor and not a one-shot read per scrape: a one-shot read makes the server build, and the
exporter parse, the whole tables at every scrape (5,000 chassis are several MB, mostly
Chassis.other_config), which costs many times the scrape of as many SQL agents; the monitor pays that
once per connection and then only for the rows that change (bench/RESULTS.md, "ML2/OVN: 5,000 chassis
beside 5,000 SQL agents").

Freshness is not left to the monitor: each reading sends an `echo` on the monitor's connection and
waits for its reply by the reading's deadline. ovsdb-server sends a connection's pending updates before it
reads its next request (ovsdb/jsonrpc-server.c, ovsdb_jsonrpc_session_run), so once the reply is in,
every change committed before the reading began has been applied: the copy is as fresh as a one-shot
read. A lost connection is made anew within RETRY[0] seconds (at once when a reading asks meanwhile), and
then with growing waits while it fails; a connection that cannot be made, or an echo not answered by
the deadline, makes that reading fail (the database is down), never an older answer. An echo still
unanswered after STALL seconds ends the connection, so a silent peer is not waited on for ever.
A monitor no reading asked for in IDLE seconds closes its connection and ends its thread.

The messages are decoded by the standard library's json, and the monitor is kept here rather than by
the `ovs` package's IDL: its parser is written in Python (its C parser comes only with a build against
libopenvswitch), and both its first read and each read of its cache cost more than a whole SQL scrape
(bench/RESULTS.md, same section).
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:
    import ovs.poller
    import ovs.stream
except ImportError:  # the optional extra [ovn]: only ML2/OVN clouds need it
    ovs = None

# ovs.stream keeps the SSL files in class attributes, read when an ssl: stream is opened: each
# opening sets them under this lock, so two databases with different files can be read at once.
_SSL_LOCK = threading.Lock()
_CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0  # seconds for one connection attempt of the monitor's thread
STALL = 60.0  # seconds without an answer to a request after which the connection is made anew
IDLE = 600.0  # seconds without a reading after which a monitor ends
RETRY = (0.25, 5.0)  # first and longest wait between failed connection attempts
MISSING = (
    "the Python package ovs (Open vSwitch's OVSDB library) is not installed: "
    "pip install 'openstack-service-exporter[ovn]'"
)

Row = dict[str, Any]  # one row as OVSDB's JSON notation gives it
Tables = dict[str, dict[str, Any]]  # table -> row uuid -> what Select.derive made of the row


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


def _row(row: Row) -> Any:
    return row


@dataclass(frozen=True)
class Select:
    """One table watched, only the named columns; `derive` makes what is kept of each row (once per
    change of the row, in the monitor's thread, so that readings find it made)."""

    table: str
    columns: tuple[str, ...]
    derive: Callable[[Row], Any] = _row


def _open(connection: str, remote: Remote) -> tuple[int, Any]:
    if not connection.startswith("ssl:"):
        return ovs.stream.Stream.open(connection)  # type: ignore[no-any-return]
    for what in ("private_key", "certificate", "ca_cert"):
        if not getattr(remote, what):
            raise OvsdbError(f"{connection}: an ssl: connection needs a {what.replace('_', ' ')} file")
    with _SSL_LOCK:
        ovs.stream.Stream.ssl_set_private_key_file(remote.private_key)
        ovs.stream.Stream.ssl_set_certificate_file(remote.certificate)
        ovs.stream.Stream.ssl_set_ca_cert_file(remote.ca_cert)
        try:
            return ovs.stream.Stream.open(connection)  # type: ignore[no-any-return]
        except (OSError, ValueError) as exc:  # unreadable PEM files: the SSL context fails at opening
            raise OvsdbError(f"{connection}: {type(exc).__name__}: {exc}") from None


def _wait(stream: Any, deadline: float, kind: int) -> None:
    poller = ovs.poller.Poller()
    stream.wait(poller, kind)
    poller.timer_wait(max(0, int((deadline - time.monotonic()) * 1000)))
    poller.block()


def _connect(connection: str, remote: Remote, deadline: float) -> Any:
    """An open stream to `connection`, or OvsdbError saying why not."""
    error, stream = _open(connection, remote)
    if error:
        raise OvsdbError(f"{connection}: {os.strerror(error)}")
    while True:
        error = stream.connect()
        if error == errno.EAGAIN and time.monotonic() < deadline:
            _wait(stream, deadline, ovs.stream.Stream.W_CONNECT)
            continue
        if error:
            stream.close()
            raise OvsdbError(f"{connection}: {os.strerror(errno.ETIMEDOUT if error == errno.EAGAIN else error)}")
        return stream


def _send(stream: Any, message: dict[str, Any], deadline: float) -> None:
    data = json.dumps(message).encode()
    while data:
        sent = stream.send(data)
        if sent >= 0:
            data = data[sent:]
        elif sent != -errno.EAGAIN:
            raise OvsdbError(f"send: {os.strerror(-sent)}")
        elif time.monotonic() >= deadline:
            raise OvsdbError("send: timed out")
        else:
            _wait(stream, deadline, ovs.stream.Stream.W_SEND)


class _Framer:
    """The JSON-RPC messages in a byte stream (they come one after another, with no separator)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        end = len(self._buffer)
        while end and self._buffer[end - 1] in b" \t\r\n":
            end -= 1
        # A message is complete only when it ends in '}': decode only then (a big reply arrives in
        # many chunks, most of which end elsewhere).
        if not end or self._buffer[end - 1] != ord("}"):
            return []
        text = self._buffer.decode("utf-8")
        messages, at = [], 0
        while True:
            while at < len(text) and text[at] in " \t\r\n":
                at += 1
            if at == len(text):
                break
            try:
                message, at = self._decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                break
            messages.append(message)
        self._buffer = bytearray(text[at:].encode("utf-8"))
        return messages


class Monitor:
    """One database's watched tables, kept by a thread; `fresh` gives them as of the call."""

    def __init__(self, remote: Remote, database: str, selects: Sequence[Select]):
        self.remote, self.database, self.selects = remote, database, tuple(selects)
        self._derive = {s.table: s.derive for s in self.selects}
        self._cond = threading.Condition()
        self._tables: Tables = {}
        self._copy: Tables | None = None  # what readings get, until the tables change: shared, never changed
        self._requested = self._answered = self._failed = 0  # readings' tickets
        self._error = "not connected yet"
        self._used = time.monotonic()
        self.closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name=f"ovsdb monitor {database}", daemon=True)
        self._thread.start()

    def fresh(self, deadline: float) -> Tables:
        """The tables with every change committed before this call (the same object while they do not
        change: not to be changed); OvsdbError when the database cannot be reached, TimeoutError when
        it has not answered by `deadline` (monotonic)."""
        with self._cond:
            if self.closed:
                raise _Closed
            self._used = time.monotonic()
            self._requested += 1
            ticket = self._requested
            self._poke()
            while True:
                if self._answered >= ticket:
                    if self._copy is None:
                        self._copy = {table: dict(rows) for table, rows in self._tables.items()}
                    return self._copy
                if self._failed >= ticket:
                    raise OvsdbError(self._error)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._cond.wait(remaining)

    def cpu_seconds(self) -> float:
        """CPU time its thread has used (receiving, decoding and applying the server's messages)."""
        ident = self._thread.ident
        if ident is None or not self._thread.is_alive():
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(ident))

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._poke()
        self._thread.join(CONNECT_TIMEOUT + 1)

    def _poke(self) -> None:
        """Wakes the thread; under the lock (the thread closes the pipe under it as it ends)."""
        if self._wake_w < 0:
            return
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:  # already awake
            pass

    def _idle(self) -> bool:
        """Whether the thread should end (closed, or no reading for IDLE seconds); under the lock."""
        if time.monotonic() - self._used > IDLE:
            self.closed = True
        return self.closed

    def _run(self) -> None:
        retry = 0.0
        try:
            while True:
                with self._cond:
                    if self._idle():
                        return
                established, error = self._connection()
                with self._cond:
                    self._error = error
                    if not established:  # readings waiting are told; a lost connection is tried again first
                        self._failed = self._requested
                        self._cond.notify_all()
                retry = 0.0 if established else min(RETRY[1], max(RETRY[0], retry * 2))
                self._sleep(retry or RETRY[0])
        finally:
            with self._cond:
                self.closed = True
                self._failed = self._requested
                self._error = "the monitor has ended"
                self._cond.notify_all()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_w = -1
            _forget(self)

    def _sleep(self, seconds: float) -> None:
        """Waits `seconds`, or less when a reading asks (it wants a connection attempt now)."""
        poller = ovs.poller.Poller()
        poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
        poller.timer_wait(int(seconds * 1000))
        poller.block()
        self._drain()

    def _drain(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _connection(self) -> tuple[bool, str]:
        """One connection, until it ends: whether the tables came on it, and why it ended."""
        errors = []
        for connection in self.remote.connections:
            try:
                stream = _connect(connection, self.remote, time.monotonic() + CONNECT_TIMEOUT)
            except OvsdbError as exc:
                errors.append(str(exc))
                continue
            try:
                return self._serve(stream)
            finally:
                stream.close()
        return False, "; ".join(errors)

    def _serve(self, stream: Any) -> tuple[bool, str]:
        columns = {s.table: {"columns": list(s.columns)} for s in self.selects}
        request = {"method": "monitor", "params": [self.database, None, columns], "id": "monitor"}
        with self._cond:
            covered = sent = self._requested  # the tables' first copy answers the readings waiting now
        established, asked_at = False, time.monotonic()  # asked_at: when the oldest unanswered request went
        framer = _Framer()
        try:
            _send(stream, request, time.monotonic() + CONNECT_TIMEOUT)
            while True:
                self._drain()
                with self._cond:
                    if self._idle():
                        return established, "the monitor has ended"
                    wanted = self._requested
                if wanted > sent:
                    _send(stream, {"method": "echo", "params": [], "id": wanted}, time.monotonic() + CONNECT_TIMEOUT)
                    sent, asked_at = wanted, asked_at or time.monotonic()
                while True:
                    error, data = stream.recv(_CHUNK)
                    if error == errno.EAGAIN:
                        break
                    if error:
                        return established, f"receive: {os.strerror(error)}"
                    if not data:
                        return established, "the server closed the connection"
                    for message in framer.feed(data):
                        if message.get("method") == "echo":  # the server's keepalive: answered as it asks
                            reply = {"result": message.get("params"), "error": None, "id": message.get("id")}
                            _send(stream, reply, time.monotonic() + CONNECT_TIMEOUT)
                        elif message.get("method") == "update":
                            self._apply(message["params"][1])
                        elif message.get("id") == "monitor":
                            if message.get("error") is not None:
                                return False, f"{self.database}: {message['error']}"
                            self._apply(message["result"], initial=True, answered=covered)
                            established = True
                            asked_at = 0.0 if sent == covered else time.monotonic()
                        elif isinstance(message.get("id"), int):
                            with self._cond:
                                self._answered = max(self._answered, message["id"])
                                self._cond.notify_all()
                            asked_at = 0.0 if message["id"] == sent else asked_at
                if asked_at and time.monotonic() - asked_at > STALL:
                    return established, f"no answer for {STALL:g}s"
                poller = ovs.poller.Poller()
                stream.wait(poller, ovs.stream.Stream.W_RECV)
                poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
                poller.timer_wait(1000)
                poller.block()
        except OvsdbError as exc:
            return established, str(exc)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:  # not the expected schema
            return False, f"{self.database}: unexpected data: {type(exc).__name__}: {exc}"

    def _apply(self, updates: dict[str, Any], initial: bool = False, answered: int = 0) -> None:
        """One update notification (or the first copy): each row made anew from its "new" columns (all
        the watched ones, RFC 7047 4.1.6), or removed when it has none."""
        made: dict[str, list[tuple[str, Any]]] = {}
        for table, rows in updates.items():
            derive = self._derive[table]
            made[table] = [(uuid, derive(change["new"]) if "new" in change else None) for uuid, change in rows.items()]
        with self._cond:
            if initial:
                self._tables = {s.table: {} for s in self.selects}
                self._answered = max(self._answered, answered)
            self._copy = None
            for table, changes in made.items():
                rows = self._tables[table]
                for uuid, value in changes:
                    if value is None:
                        rows.pop(uuid, None)
                    else:
                        rows[uuid] = value
            self._cond.notify_all()


class _Closed(Exception):
    """The monitor ended between being found and being asked: another is made."""


_MONITORS: dict[tuple[Remote, str, tuple[Select, ...]], Monitor] = {}
_MONITORS_LOCK = threading.Lock()


def _forget(monitor: Monitor) -> None:
    with _MONITORS_LOCK:
        key = (monitor.remote, monitor.database, monitor.selects)
        if _MONITORS.get(key) is monitor:
            del _MONITORS[key]


def available() -> bool:
    """Whether the `ovs` library is installed."""
    return ovs is not None


def read(remote: Remote, database: str, selects: Sequence[Select], deadline: float) -> Tables:
    """The watched tables of `database` as of now, by `deadline` (monotonic), from its monitor (made
    at the first reading). Raises OvsdbError or TimeoutError."""
    if ovs is None:
        raise OvsdbError(MISSING)
    key = (remote, database, tuple(selects))
    while True:
        with _MONITORS_LOCK:
            monitor = _MONITORS.get(key)
            if monitor is None or monitor.closed:
                monitor = _MONITORS[key] = Monitor(remote, database, selects)
        try:
            return monitor.fresh(deadline)
        except _Closed:
            continue


def monitors() -> list[Monitor]:
    with _MONITORS_LOCK:
        return list(_MONITORS.values())


def close_all() -> None:
    """Ends every monitor (they end by themselves after IDLE seconds without a reading)."""
    with _MONITORS_LOCK:
        monitors = list(_MONITORS.values())
        _MONITORS.clear()
    for monitor in monitors:
        monitor.close()


# OVSDB's JSON notation (RFC 7047, 5.1): sets and maps are tagged unless they hold one atom.


def atom_set(value: Any) -> list[Any]:
    """A set column's items ([] for the empty set)."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1]  # type: ignore[no-any-return]
    return [value]


def uuid_of(value: Any) -> str:
    return value[1]  # type: ignore[no-any-return]


def as_map(value: Any) -> dict[str, Any]:
    return dict(value[1])
