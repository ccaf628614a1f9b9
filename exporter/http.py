"""The HTTP side: a WSGI app for /metrics and the landing page, and a threaded server for it."""
from __future__ import annotations

import html
import logging
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import __version__
from .coalesce import SharedReader
from .config import Settings
from .exposition import Renderer

LOG = logging.getLogger(__name__)

SCRAPE_TIMEOUT_HEADER = "HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"
HEALTH_PATHS = ("/healthz", "/-/healthy")
# 9.4 MB of text at 10,000 services: zlib level 1 takes 25 ms where level 6 takes 82 (bench/RESULTS.md).
GZIP_LEVEL = 1


def scrape_budget(environ: dict, settings: Settings) -> float:
    """Seconds this scrape may spend reading: a bit less than Prometheus' own timeout when it says
    so, so that the answer (with whatever was read by then) reaches it in time."""
    raw = environ.get(SCRAPE_TIMEOUT_HEADER)
    default = 2 * settings.query_timeout
    try:
        told = float(raw) if raw else None
    except ValueError:
        told = None
    if told is None or told <= 0:
        return default
    return min(default, max(0.1, told - max(0.25, 0.1 * told)))


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header (RFC 9110) allows gzip: named, or `*`, with a q above 0.
    ("gzip;q=0" refuses it.)"""
    allowed = {}
    for item in header.split(","):
        coding, *params = (p.strip() for p in item.split(";"))
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
        + "".join(f"<br>note: {html.escape(note)}" for note in s.notes) + "</li>"
        for s in settings.sources)
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


class MetricsApp:
    """WSGI application. `authorize` (from the web config) may refuse a request before any work."""

    def __init__(self, source: SharedReader, settings: Settings, clock: Callable[[], int], driver: str,
                 authorize: Callable[[dict], bool] | None = None):
        self.source = source
        self.settings = settings
        self.clock = clock
        self.driver = driver
        self.authorize = authorize
        # One Renderer per app: the scrapes that show the same reading share its rendering.
        self.renderer = Renderer(GZIP_LEVEL)

    def __call__(self, environ, start_response):
        body = self._route(environ, start_response)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []  # the headers of a GET, no body (wsgiref would send one)
        return body

    def _route(self, environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")])
            return [b"Method Not Allowed\n"]
        if path in HEALTH_PATHS:
            # NOTE: liveness probes (kubelet, load balancers) carry no credentials; "OK" reveals nothing.
            return self._reply(start_response, "200 OK", "text/plain", b"OK\n")
        if self.authorize is not None and not self.authorize(environ):
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8"),
                                                ("WWW-Authenticate", 'Basic realm="openstack-service-exporter"')])
            return [b"Unauthorized\n"]
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path == "/":
            return self._reply(start_response, "200 OK", "text/html; charset=utf-8", landing_page(self.settings))
        return self._reply(start_response, "404 Not Found", "text/plain", b"Not Found\n")

    def _metrics(self, environ, start_response):
        snapshot = self.source.get(scrape_budget(environ, self.settings))
        gzipped = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        body = self.renderer.body(snapshot, self.settings, self.clock(), self.driver, gzipped)
        headers = [("Content-Type", CONTENT_TYPE_LATEST)]
        if gzipped:
            headers += [("Content-Encoding", "gzip"), ("Content-Length", str(sum(map(len, body))))]
        # NOTE: the plain text goes out as it is written, without Content-Length: at 100,000
        # services it is 90 MB, which is never whole in memory.
        start_response("200 OK", headers)
        return body

    @staticmethod
    def _reply(start_response, status, content_type, body):
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]


class _QuietHandler(WSGIRequestHandler):
    timeout = 60  # a client that connects and says nothing costs one thread for at most this long

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        LOG.debug("%s %s", self.address_string(), format % args)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes the sixth simultaneous scrape wait for a SYN retry
    # (a second or more); scrapes are coalesced anyway, so accepting them all at once costs nothing.
    request_queue_size = 128


def make_http_server(app, host: str, port: int, ssl_context=None) -> WSGIServer:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (_ThreadingServer,), {"address_family": family})
    server = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
    if ssl_context is not None:
        # NOTE: the handshake runs in the request's own thread (not in accept), so one slow or
        # plain-HTTP client cannot stall the server.
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True,
                                                do_handshake_on_connect=False)
    return server


def serve_in_thread(server: WSGIServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    return thread
