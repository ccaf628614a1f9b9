"""Changes put into an exporter process by the benchmark, to measure them (never used otherwise).

"before": /metrics as it was before the fast writer (generate_latest over every family, gzip of
the whole body). The others are changes proposed outside bench/, measured before they are made, or
a setting of `serve` taken back, to measure what it gives.
"""

from __future__ import annotations

import asyncio
import gzip
import types

import sqlalchemy
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from openstack_service_exporter import cli, engines, exposition, http
from openstack_service_exporter.collector import families


async def _before_metrics(self, request):
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")

    def body() -> bytes:
        snapshot = self.source.get(http.scrape_budget(request.headers, self.settings))
        text = exposition.render(families(snapshot, self.settings, self.clock(), self.driver))
        return gzip.compress(text, compresslevel=http.GZIP_LEVEL) if gzipped else text

    headers = {"Content-Type": CONTENT_TYPE_LATEST, **({"Content-Encoding": "gzip"} if gzipped else {})}
    return web.Response(body=await asyncio.get_running_loop().run_in_executor(self.workers, body), headers=headers)


def before() -> None:
    http.MetricsApp._metrics = _before_metrics


def _engines(**options) -> None:
    """engines.make_engine with these options too, for MySQL URLs."""
    proxy = types.SimpleNamespace(**{k: getattr(sqlalchemy, k) for k in dir(sqlalchemy) if not k.startswith("__")})

    def create_engine(url, **kwargs):
        if url.get_backend_name() == "mysql":
            kwargs.update(options)
        return sqlalchemy.create_engine(url, **kwargs)

    proxy.create_engine = create_engine
    engines.sa = proxy


def no_ping() -> None:
    """No pool_pre_ping: no ping round trip per database (the exporter does not retry, so a dead
    pooled connection would then fail one reading)."""
    _engines(pool_pre_ping=False)


def default_gc() -> None:
    """Python's own garbage collector settings, as before `serve` tuned them (cli.tune_gc)."""
    cli.tune_gc = lambda: None


PATCHES = {"before": before, "no_ping": no_ping, "default_gc": default_gc}


def apply(names: list[str]) -> None:
    for name in names:
        PATCHES[name]()
