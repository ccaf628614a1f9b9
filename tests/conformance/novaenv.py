"""Real Nova 34.0.0 in its own virtual environment, made once and reused (tests and bench).

The venv lives in a cache folder (NOVA_VENV overrides it); the pins beside this file are those with
which `pip install nova==34.0.0` resolves cleanly on Python 3.11.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import venv

NOVA_VERSION = "34.0.0"
PINS = pathlib.Path(__file__).with_name("nova34-constraints.txt")
# Nova requires oslo.cache but no memcache client: a deployment with servicegroup_driver = mc installs the
# one its [cache] backend needs (pymemcache for dogpile.cache.pymemcache, python-memcached for
# oslo_cache.memcache_pool and dogpile.cache.memcached).
MEMCACHE_CLIENTS = {"pymemcache": "pymemcache", "python-memcached": "memcache"}  # package -> module


def venv_dir() -> pathlib.Path:
    override = os.environ.get("NOVA_VENV")
    if override:
        return pathlib.Path(override)
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    return cache / "openstack-service-exporter" / f"nova-{NOVA_VERSION}"


def python() -> pathlib.Path:
    return venv_dir() / "bin" / "python"


def ensure() -> pathlib.Path:
    """The venv's python, with Nova importable; installs it on first use (about 40 s)."""
    exe = python()
    marker = venv_dir() / ".nova-installed"
    if marker.exists() and exe.exists():
        _add_memcache_clients(exe)
        return exe
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir())
    subprocess.run([str(exe), "-m", "pip", "install", "-q", "-c", str(PINS), f"nova=={NOVA_VERSION}", "PyMySQL",
                    *MEMCACHE_CLIENTS], check=True)
    subprocess.run([str(exe), "-c", "import nova.servicegroup.api, nova.objects, "
                    + ", ".join(MEMCACHE_CLIENTS.values())], check=True)
    marker.write_text(NOVA_VERSION)
    return exe


def _add_memcache_clients(exe: pathlib.Path) -> None:
    """A venv made before the clients were in the list gets them added (never remade: another run may be
    using it)."""
    probe = subprocess.run([str(exe), "-c", "import " + ", ".join(MEMCACHE_CLIENTS.values())], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "-c", str(PINS), *MEMCACHE_CLIENTS], check=True)


if __name__ == "__main__":
    print(ensure())
    sys.exit(0)
