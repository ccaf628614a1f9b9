"""The HTTP side: /metrics, the landing page and the health probes, as an aiohttp handler served by
server.HTTPServer (whose limits protect it before any of this runs).

The readings and the rendering are blocking (SQLAlchemy, threads): they run in WORKERS threads, off
the event loop. A body is sent under WRITE_TIMEOUT: a client that stops reading is dropped when it
passes, and what its answer held is freed.
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import ssl
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web

from . import __version__
from .basicauth import BasicAuth, TooBusy
from .coalesce import SharedReader
from .config import Settings
from .exposition import Renderer
from .server import SERVER, HTTPServer
from .workers import Workers

LOG = logging.getLogger(__name__)

SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
HEALTH_PATHS = ("/healthz", "/-/healthy")
# 9.4 MB of text at 10,000 services: zlib level 1 takes 25 ms where level 6 takes 82 (bench/RESULTS.md).
GZIP_LEVEL = 1
# The text format's media type (Prometheus' exposition formats, text 0.0.4): what the writer produces.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WORKERS = 8  # threads for the readings and the rendering (ended after 5 s idle)
WRITE_TIMEOUT = 30.0  # seconds to send a whole body
ACCEPT_ENCODING_ITEMS = 8  # items of Accept-Encoding looked at; a client needs two or three
PIECE = 256 * 1024  # bytes handed to the socket at a time: what a stalled reader can hold unsent
# Compressed bytes inflated at a time: about one PIECE of text (the text compresses 16:1 at level 1).
INFLATE_INPUT = 16 * 1024


def scrape_budget(headers: Mapping[str, str], settings: Settings) -> float:
    """Seconds this scrape may spend reading: a bit less than Prometheus' own timeout when it says
    so, so that the answer (with whatever was read by then) reaches it in time. A value that is no
    finite positive number of seconds (nan, inf, 1e999, 0, junk) gets the default."""
    raw = headers.get(SCRAPE_TIMEOUT_HEADER)
    default = 2 * settings.query_timeout
    try:
        told = float(raw) if raw else math.nan
    except ValueError:
        told = math.nan
    if not (math.isfinite(told) and told > 0):
        return default
    return min(default, max(0.1, told - max(0.25, 0.1 * told)))


def accepts_gzip(values: list[str]) -> bool:
    """Whether Accept-Encoding (RFC 9110; every such header, in order) allows gzip: named, or `*`,
    with a q above 0 ("gzip;q=0" refuses it). Only the first ACCEPT_ENCODING_ITEMS items count."""
    items = [
        item
        for value in values[:ACCEPT_ENCODING_ITEMS]
        for item in value.split(",", ACCEPT_ENCODING_ITEMS)[:ACCEPT_ENCODING_ITEMS]
    ]
    allowed = {}
    for item in items[:ACCEPT_ENCODING_ITEMS]:
        coding, *params = (p.strip() for p in item.split(";", 3)[:3])
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        allowed[coding.lower()] = q
    q = allowed.get("gzip", allowed.get("x-gzip", allowed.get("*", 0.0)))
    return q > 0


def landing_page(settings: Settings) -> bytes:
    projects = "".join(
        f"<li>{html.escape(s.source.project)}: down after {s.down_time} s without a heartbeat"
        + "".join(f"<br>note: {html.escape(note)}" for note in s.notes)
        + "</li>"
        for s in settings.sources
    )
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>OpenStack service exporter</title></head>
<body>
<h1>OpenStack service exporter {html.escape(__version__)}</h1>
<p>Each OpenStack project's own up/down verdict for every service, read from its databases.</p>
<p><a href="/metrics">Metrics</a></p>
<ul>{projects}</ul>
<p>Metric prefix: "{html.escape(settings.metric_prefix)}".</p>
</body></html>
"""
    return body.encode()


def text_size(pieces: list[bytes]) -> int:
    """The length of the text a one-member gzip body holds: its trailer's ISIZE (RFC 1952)."""
    size: int = struct.unpack("<I", pieces[-1][-4:])[0]
    return size


def inflated(pieces: list[bytes]) -> Iterator[bytes]:
    """The text of a gzip body, PIECE bytes at a time: a scrape without gzip is sent the reading's
    shared rendering, inflated as it goes, and holds no text of its own beyond one piece."""
    inflater = zlib.decompressobj(wbits=31)
    for piece in pieces:
        view = memoryview(piece)
        for start in range(0, len(view), INFLATE_INPUT):
            # NOTE: fed a slice at a time: what zlib leaves unconsumed is a private copy (its
            # unconsumed_tail), which for the whole shared body would be megabytes per stalled reader.
            data: bytes | memoryview = view[start : start + INFLATE_INPUT]
            while data:
                out = inflater.decompress(data, PIECE)
                data = inflater.unconsumed_tail
                if out:
                    yield out
    rest = inflater.flush()
    if rest:
        yield rest


class MetricsApp:
    """The aiohttp handler. `authorize` (the web config's basic auth) may refuse a request before
    any work; `headers` (the web config's http_server_config.headers) go on every answer."""

    def __init__(
        self,
        source: SharedReader,
        settings: Settings,
        clock: Callable[[], int],
        driver: str,
        authorize: BasicAuth | None = None,
        headers: Mapping[str, str] | None = None,
        write_timeout: float | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.driver = driver
        self.authorize = authorize
        self.headers = {"Server": SERVER, **(headers or {})}
        self.write_timeout = write_timeout or WRITE_TIMEOUT
        # One Renderer per app: the scrapes that show the same reading share its rendering.
        self.renderer = Renderer(GZIP_LEVEL)
        self.workers = Workers(WORKERS, "http-work")

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await self._route(request)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:  # noqa: BLE001 - a bug, not the client's doing: logged, and a 500
            LOG.exception("%s %s", request.method, request.path)
            return self._reply(500, "text/plain; charset=utf-8", b"Internal Server Error\n")

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        # NOTE: request.path is the path of an absolute-form target too (GET http://host/metrics).
        path = request.path
        if request.method not in ("GET", "HEAD"):
            return self._reply(405, "text/plain; charset=utf-8", b"Method Not Allowed\n", Allow="GET, HEAD")
        if path in HEALTH_PATHS:
            # NOTE: liveness probes (kubelet, load balancers) carry no credentials; "OK" reveals nothing.
            return self._reply(200, "text/plain; charset=utf-8", b"OK\n")
        if self.authorize is not None:
            try:
                allowed = await self.authorize.check(request.headers.get("Authorization", ""))
            except TooBusy:
                return self._reply(429, "text/plain; charset=utf-8", b"Too Many Requests\n", **{"Retry-After": "1"})
            if not allowed:
                return self._reply(
                    401,
                    "text/plain; charset=utf-8",
                    b"Unauthorized\n",
                    **{"WWW-Authenticate": 'Basic realm="openstack-service-exporter"'},
                )
        if path == "/metrics":
            return await self._metrics(request)
        if path == "/":
            return self._reply(200, "text/html; charset=utf-8", landing_page(self.settings))
        return self._reply(404, "text/plain; charset=utf-8", b"Not Found\n")

    def _reply(self, status: int, content_type: str, body: bytes, **headers: str) -> web.Response:
        return web.Response(status=status, body=body, headers={**self.headers, "Content-Type": content_type, **headers})

    def _body(self, budget: float) -> list[bytes]:
        snapshot = self.source.get(budget)
        # NOTE: always the gzip body, which a reading's scrapes share; one without gzip is sent it
        # inflated, so that it never holds a reading (or its text) of its own.
        return self.renderer.body(snapshot, self.settings, self.clock(), self.driver, True)

    async def _metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        arrived = time.monotonic()
        budget = scrape_budget(request.headers, self.settings)
        gzipped = accepts_gzip(request.headers.getall("Accept-Encoding", []))
        loop = asyncio.get_running_loop()
        # The time spent waiting for a worker thread counts against the budget.
        pieces = await loop.run_in_executor(
            self.workers, lambda: self._body(max(0.05, budget - (time.monotonic() - arrived)))
        )
        response = web.StreamResponse(headers={**self.headers, "Content-Type": CONTENT_TYPE})
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
            response.content_length = sum(map(len, pieces))
        else:
            response.content_length = text_size(pieces)
        response.headers["Vary"] = "Accept-Encoding"
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        try:
            await asyncio.wait_for(self._send(response, pieces, gzipped), self.write_timeout)
        except TimeoutError:
            LOG.debug("%s: body not taken within %gs: dropped", request.remote, self.write_timeout)
            if request.transport is not None:
                request.transport.abort()  # its unsent bytes go with it
        except ConnectionError:
            LOG.debug("%s: went away during the body", request.remote)
        return response

    async def _send(self, response: web.StreamResponse, pieces: list[bytes], gzipped: bool) -> None:
        if gzipped:
            for piece in pieces:
                view = memoryview(piece)
                for start in range(0, len(view), PIECE):
                    await response.write(view[start : start + PIECE])
            return
        loop = asyncio.get_running_loop()
        chunks = inflated(pieces)
        while True:
            chunk = await loop.run_in_executor(self.workers, next, chunks, None)
            if chunk is None:
                return
            await response.write(chunk)

    def close(self) -> None:
        self.workers.shutdown(wait=False, cancel_futures=True)
        if self.authorize is not None:
            self.authorize.close()


def make_http_server(
    app: MetricsApp, host: str, port: int, ssl_context: ssl.SSLContext | None = None, **limits: Any
) -> HTTPServer:
    return HTTPServer(app, host, port, ssl_context, **limits)
