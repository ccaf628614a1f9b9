"""Basic auth against the bcrypt hashes of the web config, as exporter-toolkit checks it
(prometheus/exporter-toolkit, web/handler.go, webHandler.ServeHTTP):

- a user that does not exist is checked against a decoy hash of the highest cost in use, so that
  the answer takes as long as for a user that does (no enumeration by timing);
- one bcrypt check at a time (toolkit: bcryptMtx), in its own thread, and at most MAX_WAITING
  waiting for it: beyond, 429 at once (toolkit: its rate limiter's answer);
- a successful check is cached (toolkit caches the outcome by user, hash and password), so a
  scrape every few seconds costs no bcrypt; failures are not, so that guesses cannot push it out;
- the cost of every hash is checked when the file is read: above MAX_COST one check would pin a
  core for seconds to days (cost 31), so such a file is refused.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor

MAX_COST = 17  # bcrypt doubles per step: cost 12 is about 0.25 s a check, 17 about 8 s
MAX_WAITING = 16
CACHE_SIZE = 64
# What Go's bcrypt (and Python's) accept: $2a$, $2b$, $2y$, a two-digit cost, 22 + 31 characters.
HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


class TooBusy(Exception):
    """More checks waiting than MAX_WAITING."""


def cost_of(user: str, hashed: str) -> int:
    """The hash's cost; ValueError naming the user when it is no bcrypt hash or too costly."""
    match = HASH.fullmatch(hashed)
    if not match:
        raise ValueError(f"basic_auth_users.{user}: not a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters)")
    cost = int(match.group(1))
    if not 4 <= cost <= MAX_COST:
        raise ValueError(
            f"basic_auth_users.{user}: bcrypt cost {cost} is outside 4..{MAX_COST} "
            f"(each check would take about {0.25 * 2 ** (cost - 12):.3g} s of a core)"
        )
    return cost


def credentials(header: str) -> tuple[bytes, bytes] | None:
    """(user, password) of an Authorization header, as bytes; None when it is not a well-formed Basic one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: a non-ASCII header
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


class BasicAuth:
    def __init__(self, users: dict[str, str]):
        import bcrypt  # only needed when basic auth is configured

        self._bcrypt = bcrypt
        costs = [cost_of(user, hashed) for user, hashed in users.items()]
        self._users = {user.encode(): hashed.encode() for user, hashed in users.items()}
        self._decoy = bcrypt.hashpw(b"decoy password", bcrypt.gensalt(max(costs)))
        self._good: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")
        self._waiting = 0

    def __call__(self, header: str) -> bool:
        """The check, blocking (the cache, then bcrypt in the caller's thread)."""
        pair = credentials(header)
        if pair is None:
            return False
        key = self._key(*pair)
        return self._cached(key) or self._compare(key, *pair)

    async def check(self, header: str) -> bool:
        """The check for a request: cached ones at once, else bcrypt in its own thread, one at a
        time. Raises TooBusy when MAX_WAITING checks are already waiting."""
        pair = credentials(header)
        if pair is None:
            return False
        key = self._key(*pair)
        if self._cached(key):
            return True
        if self._waiting >= MAX_WAITING:
            raise TooBusy
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, self._compare, key, *pair)
        finally:
            self._waiting -= 1

    def _key(self, user: bytes, password: bytes) -> bytes:
        hashed = self._users.get(user, self._decoy)
        return hashlib.sha256(b"\0".join((user.hex().encode(), hashed, password.hex().encode()))).digest()

    def _cached(self, key: bytes) -> bool:
        with self._lock:
            return key in self._good

    def _compare(self, key: bytes, user: bytes, password: bytes) -> bool:
        hashed = self._users.get(user)
        try:
            ok = self._bcrypt.checkpw(password, hashed or self._decoy) and hashed is not None
        except ValueError:  # e.g. a password above bcrypt's 72 bytes
            return False
        if ok:
            with self._lock:
                self._good[key] = None
                while len(self._good) > CACHE_SIZE:
                    self._good.popitem(last=False)
        return ok

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
