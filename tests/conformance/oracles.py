"""The released OpenStack projects the conformance suites and bench/ compare with, in ONE virtual
environment made once and reused: Nova, Cinder, Neutron and Ironic of one series, installed by one pip
run under one constraints file (oracle-constraints.txt beside this file), so their shared libraries
(oslo.*, SQLAlchemy, ...) are the ones those releases are tested with together.

The venv lives in the user's cache (OPENSTACK_ORACLES_VENV overrides the folder). Several runs may
want it at once (pytest, bench, another checkout): the install holds an exclusive lock on a file
beside the venv, so a second run waits for the first instead of wiping its half-made venv, and a run
that died mid-install leaves no lock behind, only a venv without its marker, which is made afresh.

    python3 tests/conformance/oracles.py      # install (or check) and print the venv's python
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pathlib
import subprocess
import sys
import time
import venv

SERIES = "2026.2"
PROJECTS = {"nova": "34.0.0", "cinder": "29.0.0", "neutron": "29.0.0", "ironic": "39.0.0"}
# The judges' database driver and clock; the memcache clients of Nova's mc service group driver (Nova
# requires oslo.cache but no client: a deployment installs the one its [cache] backend needs).
EXTRAS = ("PyMySQL", "freezegun", "pymemcache", "python-memcached")
PINS = pathlib.Path(__file__).with_name("oracle-constraints.txt")
# What an install must be able to do: import each project's judged code and run its db tool.
IMPORTS = {
    "nova": "nova.servicegroup.api, nova.objects, pymemcache, memcache",
    "cinder": "cinder.api.v3.services, cinder.objects.service",
    "neutron": "neutron.db.agents_db, neutron.db.models.agent",
    "ironic": "ironic.conductor.utils, ironic.db.sqlalchemy.models",
}
DB_TOOLS = {"nova": "nova-manage", "cinder": "cinder-manage", "neutron": "neutron-db-manage", "ironic": "ironic-dbsync"}
WAIT_SECONDS = 1200  # for another run's install; a cold one takes a few minutes


def requirements() -> list[str]:
    return [f"{name}=={version}" for name, version in PROJECTS.items()] + list(EXTRAS)


def venv_dir() -> pathlib.Path:
    override = os.environ.get("OPENSTACK_ORACLES_VENV")
    if override:
        return pathlib.Path(override)
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    return cache / "openstack-service-exporter" / f"oracles-{SERIES}"


def python() -> pathlib.Path:
    return venv_dir() / "bin" / "python"


def tool(name: str) -> pathlib.Path:
    """A console script of the venv, e.g. tool("cinder-manage")."""
    return venv_dir() / "bin" / name


def run_tool(command: list[str], timeout: float, env: dict | None = None) -> str:
    """A project's own tool (its db sync, its manage command): its output, or a failure that shows it."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        name = pathlib.Path(command[0]).name
        raise RuntimeError(
            f"{name} {' '.join(command[1:])} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def _fingerprint() -> str:
    """Changes with the requirements or the pins, so that a changed pin file reinstalls."""
    digest = hashlib.sha256("\n".join(requirements()).encode() + b"\0" + PINS.read_bytes())
    return digest.hexdigest()


def _marker() -> pathlib.Path:
    return venv_dir() / ".oracles-installed"


def _ready() -> bool:
    marker = _marker()
    return python().exists() and marker.exists() and marker.read_text() == _fingerprint()


def check() -> None:
    """Each project imports and its db tool runs; raises with the tool's output otherwise. One
    process per project: they register some oslo.config options (state_path, ...) each its own way,
    so two of them cannot be imported into one process."""
    commands = [[str(python()), "-c", f"import {modules}"] for modules in IMPORTS.values()]
    commands += [[str(tool(name)), "--help"] for name in DB_TOOLS.values()]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")


def _install() -> None:
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir())
    subprocess.run([str(python()), "-m", "pip", "install", "-q", "-c", str(PINS), *requirements()], check=True)
    check()
    _marker().write_text(_fingerprint())


def ensure(wait_seconds: float = WAIT_SECONDS) -> pathlib.Path:
    """The venv's python, every project installed and checked; installs on first use (a few
    minutes), or waits while another run is installing it."""
    if _ready():
        return python()
    folder = venv_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another run has been installing {folder} for over {wait_seconds} s") from None
                time.sleep(2)
        if not _ready():  # the run we waited for may have made it
            _install()
    return python()


if __name__ == "__main__":
    print(ensure())
    sys.exit(0)
