"""The front door: aiohttp's HTTP/1.1 server (asyncio, C parser) with the limits that Go's net/http
gives the exporters built on exporter-toolkit. Why aiohttp, measured against uvicorn/h11, hypercorn,
cheroot and the stdlib server: bench/FRONTDOOR.md.

Each limit is checked on the connection, before aiohttp parses a request or the app authenticates it:

- MAX_HEADER_BYTES of request line and headers (Go: MaxHeaderBytes); beyond, 431 and the connection
  is closed, so a flood of headers costs at most this much per connection;
- READ_HEADER_TIMEOUT from a connection's start, or from the first byte of its next request, to the
  end of the headers (Go: ReadHeaderTimeout); then it is closed, however slowly bytes trickle in;
- IDLE_TIMEOUT between the requests of a kept-alive connection (aiohttp's keepalive_timeout);
- MAX_CONNECTIONS open at once: a new connection beyond it closes the oldest one that is not in the
  middle of a request (idle, or still sending its headers), so idle and slow clients never keep a
  scrape out; only when every connection is being answered is the new one closed.

After a burst of connections (BURST or more open at once) falls back to a quarter of its height, the
heap's free memory goes back to the system (glibc's malloc_trim): what a scrape allocated while a
burst's buffers were interleaved with it is free but kept by the allocator, tens of MB at large sizes
(bench/ANALYSIS.md, "The front door's memory during and after attacks").

An idle connection costs a few kilobytes and no thread (bench/FRONTDOOR.md). Client errors are
logged at DEBUG, one line each.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import resource
import socket
import ssl
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web, web_response

LOG = logging.getLogger(__name__)

MAX_HEADER_BYTES = 32 * 1024
READ_HEADER_TIMEOUT = 10.0
IDLE_TIMEOUT = 75.0
MAX_CONNECTIONS = 512
BACKLOG = 128
BURST = 16  # connections open at once that make a burst (Prometheus keeps one or two)
TRIM_DELAY = 1.0  # seconds after the last connection of a burst left
SERVER = "openstack-service-exporter"  # the Server header: no versions

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# NOTE: aiohttp puts its own and Python's versions in the Server header of the answers it makes by
# itself (400 to a malformed request line); ours carry SERVER, so do those.
web_response.SERVER_SOFTWARE = SERVER  # type: ignore[attr-defined]

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nServer: "
    + SERVER.encode()
    + b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 32\r\nConnection: close\r\n\r\n"
    b"Request Header Fields Too Large\n"
)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on another C library (musl, macOS): nothing to do there."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return cast(Callable[[int], int], trim)


MALLOC_TRIM = _malloc_trim()


def give_back_memory() -> None:
    """The heap's free pages back to the system. glibc walks its arenas under their locks; done on
    the event loop, once per burst, as it takes milliseconds (bench/ANALYSIS.md), with no thread of
    its own (the process's thread bound)."""
    if MALLOC_TRIM is not None:
        started = time.perf_counter()
        MALLOC_TRIM(0)
        LOG.debug("free memory returned to the system in %.1f ms", 1000 * (time.perf_counter() - started))


class _QuietLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp reports a client's malformed request with a traceback (logger.exception, at ERROR
    after the first request of a connection): a client can cause that at will, so each of its
    messages is one line at DEBUG here."""

    def log(self, level: int, msg: object, *args: object, exc_info: object = None, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1] if exc_info else None
        if error is not None:
            msg, args = f"{msg}: %s", (*args, " ".join(str(error).split()))
        self.logger.log(logging.DEBUG, msg, *args, **kwargs)


class _Guard(asyncio.Protocol):
    """One connection: aiohttp's protocol behind the limits of the module's docstring."""

    def __init__(self, door: FrontDoor, inner: asyncio.Protocol) -> None:
        self.door, self.inner = door, inner
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request of it is being answered
        self.pending = 0  # bytes of the request head received so far
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    # -- asyncio's side --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # a stream's, TCP or TLS
        if not self.door.admit(self):
            self.closed = True
            transport.abort()
            return
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.busy:
            if self.timer is None:
                self._arm()
            self.pending += len(data)
            if self.pending > self.door.max_header_bytes:
                LOG.debug("%s: request head above %d bytes: 431", self._peer(), self.door.max_header_bytes)
                self.close(_TOO_LARGE)
                return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.closed else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.closed = True
        self.door.leave(self)
        if self.transport is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- the app's side ----------------------------------------------------------------------

    def request_started(self) -> None:
        self.busy, self.pending = True, 0
        self._disarm()

    def request_finished(self) -> None:
        self.busy = False  # the head timer starts again with the next request's first byte

    def close(self, farewell: bytes = b"") -> None:
        """Drop the connection now; its buffers (a partial head, unsent body) go with it."""
        self.closed = True
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            if farewell:
                self.transport.write(farewell)
                self.transport.close()
            else:
                self.transport.abort()

    # -- the head deadline --------------------------------------------------------------------

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.door.read_header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _too_slow(self) -> None:
        self.timer = None
        if not self.busy and not self.closed:
            LOG.debug("%s: no request head within %gs: closed", self._peer(), self.door.read_header_timeout)
            self.close()

    def _peer(self) -> object:
        return self.transport.get_extra_info("peername") if self.transport else None


class FrontDoor(web.Server):
    """aiohttp's low-level server (a protocol factory for loop.create_server) with its connections
    guarded; `handler` is an aiohttp handler: request -> response."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_connections: int | None = None,
        max_header_bytes: int | None = None,
        read_header_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        # (The module's constants are read now, not when this was defined: tests shorten them.)
        self.max_connections = max_connections or MAX_CONNECTIONS
        self.max_header_bytes = max_header_bytes or MAX_HEADER_BYTES
        self.read_header_timeout = read_header_timeout or READ_HEADER_TIMEOUT
        # aiohttp's own per-line limits are the total's: the total is reached first, and answered 431.
        super().__init__(
            self._guarded(handler),
            max_line_size=self.max_header_bytes,
            max_field_size=self.max_header_bytes,
            keepalive_timeout=idle_timeout or IDLE_TIMEOUT,
            access_log=None,
            logger=_QuietLog(logging.getLogger("aiohttp.server"), {}),
        )
        # Insertion order is age: the oldest connection first.
        self.guards: collections.OrderedDict[_Guard, None] = collections.OrderedDict()
        self._by_transport: dict[asyncio.BaseTransport | None, _Guard] = {}
        self._crowd = 0  # the most connections open at once since memory was last given back
        self._trim: asyncio.TimerHandle | None = None

    # NOTE: the protocol factory gives the guard around aiohttp's RequestHandler: asyncio only needs a Protocol.
    def __call__(self) -> _Guard:  # type: ignore[override]
        return _Guard(self, super().__call__())

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.BaseRequest) -> web.StreamResponse:
            guard = self._by_transport.get(request.transport)
            if guard is not None:
                guard.request_started()
            try:
                return await handler(request)
            finally:
                if guard is not None:
                    guard.request_finished()

        return guarded

    def admit(self, guard: _Guard) -> bool:
        if len(self.guards) >= self.max_connections:
            victim = next((g for g in self.guards if not g.busy), None)
            if victim is None:
                LOG.debug("%d connections, every one being answered: a new one is closed", len(self.guards))
                return False
            LOG.debug("%d connections: the oldest not in a request is closed for a new one", len(self.guards))
            self.leave(victim)
            victim.close()
        self.guards[guard] = None
        self._by_transport[guard.transport] = guard
        self._crowd = max(self._crowd, len(self.guards))
        return True

    def leave(self, guard: _Guard) -> None:
        if guard in self.guards:
            del self.guards[guard]
            self._by_transport.pop(guard.transport, None)
        if self._crowd >= BURST and len(self.guards) <= self._crowd // 4:
            # The burst is over once its connections stop leaving for TRIM_DELAY.
            if self._trim is not None:
                self._trim.cancel()
            self._trim = asyncio.get_running_loop().call_later(TRIM_DELAY, self._burst_over)

    def _burst_over(self) -> None:
        self._trim, self._crowd = None, len(self.guards)
        give_back_memory()


def raise_open_files_limit(wanted: int) -> None:
    """Go's runtime raises its soft limit of open files to the hard one at start; so does this, up
    to what MAX_CONNECTIONS and the database pools need, so that accept() never fails for want of
    a descriptor before the connection bound is reached."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class HTTPServer:
    """A FrontDoor on host:port in its own event loop; serve_forever() in the calling thread,
    shutdown() from any thread (the interface of socketserver's servers)."""

    def __init__(
        self, handler: Handler, host: str, port: int, ssl_context: ssl.SSLContext | None = None, **limits: Any
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            self.socket.listen(BACKLOG)
        except OSError:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.handler, self.ssl_context, self.limits = handler, ssl_context, limits
        self.loop = asyncio.new_event_loop()
        self.door: FrontDoor | None = None
        self._started, self._stopped = threading.Event(), threading.Event()
        self._stop = asyncio.Event()

    def serve_forever(self) -> None:
        self._started.set()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self._stopped.set()

    async def _serve(self) -> None:
        self.door = FrontDoor(self.handler, **self.limits)
        raise_open_files_limit(self.door.max_connections + 512)
        # NOTE: the TLS handshake is bounded by the head's deadline too; a connection is counted
        # (and its head timed) from the end of the handshake.
        server = await self.loop.create_server(
            self.door,
            sock=self.socket,
            ssl=self.ssl_context,
            ssl_handshake_timeout=self.door.read_header_timeout if self.ssl_context else None,
            backlog=BACKLOG,
        )
        try:
            await self._stop.wait()
        finally:
            server.close()
            await self.door.shutdown(1.0)
            await server.wait_closed()

    def shutdown(self) -> None:
        """Stop serving and wait until it has (from another thread)."""
        if self._started.is_set() and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._stopped.wait(30)

    def server_close(self) -> None:
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()
        self.socket.close()
