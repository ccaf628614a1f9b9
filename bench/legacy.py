"""The /metrics of before the fast writer (prometheus_client's generate_latest over every family,
whole-body gzip), put back into an exporter process to measure what the writer changed."""
from __future__ import annotations

import gzip

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exporter import http
from exporter.collector import families


def _metrics(self, environ, start_response):
    snapshot = self.source.get(http.scrape_budget(environ, self.settings))
    body = http.render(families(snapshot, self.settings, self.clock(), self.driver))
    headers = [("Content-Type", CONTENT_TYPE_LATEST)]
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        body = gzip.compress(body, compresslevel=http.GZIP_LEVEL)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body]


def install() -> None:
    http.MetricsApp._metrics = _metrics
