"""Nova's heartbeats with `[DEFAULT] servicegroup_driver = mc`: kept in memcached, read here through
oslo.cache itself, configured from nova.conf's [cache] as nova-api configures it, so that the backend,
the key mangling, the value format and the expiry are Nova's (oslo.cache's and dogpile's) by construction.

nova/servicegroup/drivers/mc.py, MemcachedDriver:
    key    = "%(topic)s:%(host)s" % service            (a NULL topic or host reads "None")
    is_up  = region.get(key) is not NO_VALUE           (dogpile: present, and the reader's
                                                        time.time() - the writer's ct <= expiration_time)
    region = nova/cache_utils.py get_memcached_client(expiration_time=CONF.service_down_time), with the
             down time servicegroup.API has already replaced by int(2.5 x report_interval) if too small.

oslo.cache and a memcache client are the optional extra `memcached`; they are imported only here.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterable
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from ...config import ConfigError
from ...snapshot import DatabaseHealth, describe
from .verdict import PROJECT, ServiceRow, cache_key

if TYPE_CHECKING:
    from dogpile.cache.region import CacheRegion

    from ...reader import ReadContext

LOG = logging.getLogger(__name__)

CACHE_CELL = "(memcached)"  # the `cell` label of the cache's health series
INSTALL = "pip install 'openstack-service-exporter[memcached]'"
EPOCH = datetime.datetime(1970, 1, 1)
ONE_US = datetime.timedelta(microseconds=1)

# The clients that hide a server they cannot reach (every key of it reads as a miss): they are asked
# afterwards which servers answer. pymemcache raises instead, on a client made for the reading.
# oslo_cache/backends/memcache_pool.py uses python-binary-memcached instead when TLS or SASL is on.
_PYTHON_MEMCACHED = ("dogpile.cache.memcached", "oslo_cache.memcache_pool")


def microseconds(value: object) -> int | None:
    """The cached heartbeat (Nova stores timeutils.utcnow(), a naive UTC datetime) as µs since 1970."""
    if not isinstance(value, datetime.datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return (value - EPOCH) // ONE_US


class HeartbeatCache:
    """nova.conf's [cache], ready to build the region Nova reads heartbeats from."""

    def __init__(self, conf: cfg.ConfigOpts, expiration_time: int):
        self.conf = conf
        self.expiration_time = expiration_time
        self.backend = conf.cache.backend
        self._asks_servers = self.backend in _PYTHON_MEMCACHED and not (
            self.backend == "oslo_cache.memcache_pool" and (conf.cache.tls_enabled or conf.cache.memcache_sasl_enabled)
        )
        self._pending: Future[dict[str, int | None]] | None = None
        self.region()  # a missing client library or an inconsistent [cache] is an error at start

    def region(self) -> CacheRegion:
        """A region made as nova.cache_utils._get_default_cache_region makes it. One per reading: a
        client that once failed keeps a server marked dead for minutes (python-memcached's
        dead_retry, pymemcache's dead_timeout) and would report misses for it after it is back."""
        from oslo_cache import core

        region: CacheRegion = core.create_region()
        core.configure_cache_region(self.conf, region)
        return region

    def get(self, keys: list[str]) -> dict[str, int | None]:
        """key -> cached heartbeat (µs; None when the value is no datetime) for every key present and
        unexpired; raises when a server did not answer."""
        from oslo_cache.core import NO_VALUE

        region = self.region()
        backend: Any = region.backend  # a memcached backend, with its own client and url
        client: Any = getattr(backend, "client", None)  # the memcached backends' (one per thread)
        try:
            values = region.get_multi(keys)  # type: ignore[no-untyped-call]  # dogpile leaves get_multi unannotated
            if self._asks_servers:
                answered = len(client.get_stats())
                if answered < len(backend.url):
                    raise ConnectionError(
                        f"{len(backend.url) - answered} of {len(backend.url)} memcached servers did not answer"
                    )
        finally:
            _close(client, self._asks_servers)
        return {k: microseconds(v) for k, v in zip(keys, values) if v is not NO_VALUE}

    def read(
        self, ctx: ReadContext, rows: Iterable[ServiceRow], deadline: float, query_timeout: float
    ) -> tuple[DatabaseHealth, dict[str, int | None] | None]:
        """One bulk read of the rows' keys on the reading's pool, waited for until `deadline` and at
        most query_timeout; its health, and the heartbeats found (None when it failed)."""
        started = time.monotonic()

        def failed(why: str) -> tuple[DatabaseHealth, None]:
            LOG.warning("Nova's memcached: %s", why)
            return DatabaseHealth(
                PROJECT, CACHE_CELL, False, time.monotonic() - started, why, lists_services=False
            ), None

        if self._pending is not None and not self._pending.done():
            # pymemcache has no socket timeout: a hung server holds its thread until it answers, and
            # one such thread is enough.
            return failed("the previous read has not returned yet")
        keys = list(dict.fromkeys(map(cache_key, rows)))  # cells share a key for the same topic and host
        future = self._pending = ctx.submit(self.get, keys)
        limit = max(0.0, min(deadline - started, query_timeout))
        done, _ = wait([future], timeout=limit)
        if not done:
            future.cancel()
            return failed(f"no answer within {limit:g}s")
        failure = future.exception()
        if failure is not None:
            return failed(describe(failure))
        return DatabaseHealth(
            PROJECT, CACHE_CELL, True, time.monotonic() - started, lists_services=False
        ), future.result()


def _close(client: Any, python_memcached: bool) -> None:
    """The reading's connections, closed now rather than whenever the collector finds the region."""
    try:
        if python_memcached:
            client.disconnect_all()
        elif hasattr(client, "close"):  # pymemcache
            client.close()
    except Exception:  # NOTE: closing a connection that failed must not hide why it failed
        LOG.debug("closing the memcached client failed", exc_info=True)


def cells_deadline(deadline: float, query_timeout: float) -> float:
    """When to stop waiting for cells so that the cache, read after them, has time: at most
    query_timeout, and at most half of what is left."""
    return deadline - min(query_timeout, max(0.0, deadline - time.monotonic()) / 2)


def configure(conf: cfg.ConfigOpts, down_time: int) -> HeartbeatCache:
    """nova.conf's [cache] registered on `conf` as nova/conf/cache.py registers it, and checked as
    nova/cache_utils.py get_memcached_client uses it."""
    where = "[DEFAULT] servicegroup_driver = mc"
    try:
        from oslo_cache import core
    except ImportError as exc:
        raise ConfigError(
            f"{where}: Nova's heartbeats are read through oslo.cache, which is not installed ({exc}): {INSTALL}"
        ) from None
    core.configure(conf)
    try:
        for name in conf.cache:  # oslo.config checks values at first read: force it now
            getattr(conf.cache, name)
    except (cfg.ConfigFileValueError, ValueError) as exc:
        raise ConfigError(f"invalid value in the configuration: {exc}") from None
    if not (conf.cache.enabled and conf.cache.memcache_servers):
        raise ConfigError(
            f"{where} needs [cache] enabled = true and memcache_servers: without them Nova "
            "makes no memcached client (nova.cache_utils.get_memcached_client) and cannot tell "
            "which services are up either"
        )
    if down_time != 0:  # as get_memcached_client: 0 leaves [cache] expiration_time as it is
        try:
            conf.set_override("expiration_time", down_time, group="cache")
        except ValueError as exc:
            raise ConfigError(f"{where}: the down time {down_time} is no valid cache expiration time: {exc}") from None
    try:
        return HeartbeatCache(conf, conf.cache.expiration_time)
    except ImportError as exc:
        raise ConfigError(
            f"{where}: [cache] backend = {conf.cache.backend} needs a client library that is not "
            f"installed ({exc}); {INSTALL} installs pymemcache and python-memcached"
        ) from None
    except Exception as exc:  # oslo_cache.exception.ConfigurationError, a TLS file that cannot be read, ...
        raise ConfigError(f"{where}: [cache]: {describe(exc)}") from None
