"""Private memcached servers for tests: each on its own loopback port, started, stopped and paused by
the test that made it, never a system one. If the binary is missing, Debian's memcached is installed
when it can be (root with apt-get), and the test fails loudly otherwise."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import closing

import pytest
from mariadb import ChildServer, free_port


def _binary() -> str | None:
    return shutil.which("memcached") or next(
        (p for p in ("/usr/bin/memcached", "/usr/sbin/memcached") if os.path.exists(p)), None
    )


def ensure_installed() -> str:
    if not _binary() and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "memcached"], check=True, env=env)
    binary = _binary()
    if not binary:
        pytest.fail("memcached is not installed and could not be installed: apt-get install memcached", pytrace=False)
    return binary


class Memcached(ChildServer):
    def __init__(self):
        self.binary = ensure_installed()
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def server(self) -> str:
        """As [cache] memcache_servers names it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Memcached:
        args = [self.binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16", "-t", "1"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"memcached exited with {self.proc.returncode}")
            try:
                with closing(socket.create_connection(("127.0.0.1", self.port), timeout=1)):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("memcached did not start within 10 s")

    def flush(self) -> None:
        with closing(socket.create_connection(("127.0.0.1", self.port), timeout=5)) as sock:
            sock.sendall(b"flush_all\r\n")
            assert sock.recv(64) == b"OK\r\n"
