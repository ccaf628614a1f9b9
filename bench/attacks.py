"""python3 -m bench attacks: the attacks of tests/test_attacks.py at full size and default limits,
against `serve` in its own process, while a normal scrape (gzip, as Prometheus makes it) is timed;
RSS and threads sampled during each attack and measured after it. With --baseline REV, the same
against the exporter of that revision (its openstack_service_exporter/ folder taken from git), side by side.

Clouds: 10,000 services in 10 cells (every attack's normal scrape), 40,000 in 20 cells (the stalled
readers, as in the tests).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pathlib
import socket
import subprocess
import tarfile
import threading
import time

from .cloud import build, refresh
from .scrapes import scrape
from .servers import REPO, Exporter, free_port, proc_status, write_conf
from .stats import Stats

WINDOW = 8.0  # seconds each attack runs
AFTER = 10.0  # seconds left to the process to come back after it (its idle workers end after 5)
NORMAL_SCRAPES = 7  # timed during each attack, paced


class Attack:
    """Attacker threads that keep their connections going until stopped (reconnecting when closed),
    in a process of their own: the timed scrape's client must not wait for their GIL."""

    def __init__(self, port: int):
        self.port, self.stop = port, multiprocessing.Event()
        self.process = multiprocessing.Process(target=self._run, daemon=True)

    def start(self):
        self.process.start()
        return self

    def _run(self):
        threads = [threading.Thread(target=self._loop, args=(target,), daemon=True) for target in self.targets()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _loop(self, target):
        while not self.stop.is_set():
            with contextlib.suppress(OSError):
                target()

    def end(self):
        self.stop.set()
        self.process.join(30)

    def connect(self, rcvbuf: int | None = None) -> socket.socket:
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.port))
        return s


FLOOD_LINE = b"Accept-Encoding: " + b"gzip, " * 10_915 + b"x\r\n"


def send_header_flood(s: socket.socket, path: bytes = b"/metrics") -> None:
    """One request of 100 header lines of 64 KiB (6.4 MB: the most the stdlib server took)."""
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n")
    for _ in range(99):
        s.sendall(FLOOD_LINE)
    s.sendall(b"\r\n")


class HeaderFlood(Attack):
    """20 clients, each sending a header flood once a second."""

    def targets(self):
        return [self.one] * 20

    def one(self):
        started = time.monotonic()
        try:
            with self.connect() as s:
                send_header_flood(s)
                s.recv(64)
        finally:
            self.stop.wait(max(0.0, started + 1 - time.monotonic()))


class IdleAndSlow(Attack):
    """1,000 connections that say nothing and 200 that send one byte of a header a second."""

    def targets(self):
        return [self.idle] * 10 + [self.slow] * 4

    def idle(self):  # 100 per thread
        sockets = [self.connect() for _ in range(100)]
        try:
            self.stop.wait(WINDOW * 2)
        finally:
            for s in sockets:
                s.close()

    def slow(self):  # 50 per thread
        sockets = [self.connect() for _ in range(50)]
        try:
            for s in sockets:
                s.sendall(b"GET /metrics HTTP/1.1\r\n")
            while not self.stop.wait(1.0):
                for s in sockets:
                    s.send(b"X")
        finally:
            for s in sockets:
                s.close()


class StalledReaders(Attack):
    """20 plain-text scrapes whose clients never read."""

    def targets(self):
        return [self.one] * 20

    def one(self):
        with self.connect(rcvbuf=4096) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            self.stop.wait(WINDOW * 2)


ATTACKS = {
    "header flood (20 x 6.4 MB a second)": (HeaderFlood, 10_000),
    "1,000 idle + 200 one-byte-a-second connections": (IdleAndSlow, 10_000),
    "20 stalled plain-text readers": (StalledReaders, 10_000),
    "20 stalled plain-text readers (40,000 services)": (StalledReaders, 40_000),
}


def tree_of(revision: str, workdir: pathlib.Path) -> pathlib.Path:
    """The exporter/ folder of a revision (its name before 0.2.0), in a folder of its own."""
    tree = workdir / f"tree-{revision}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "exporter"], check=True, capture_output=True
    ).stdout
    (workdir / "tree.tar").write_bytes(archive)
    with tarfile.open(workdir / "tree.tar") as tar:
        tar.extractall(tree)
    return tree


def _timed_scrapes(port: int, runs: int) -> Stats:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        scrape(port)
        seconds.append(time.perf_counter() - started)
        time.sleep(0.3)
    return Stats.of(seconds)


def _sampled(pid: int, stop: threading.Event, peak: dict) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            status = proc_status(pid)
            peak["rss_kb"] = max(peak.get("rss_kb", 0), status["VmRSS"])
            peak["threads"] = max(peak.get("threads", 0), status["Threads"])
        stop.wait(0.1)


def one_attack(db, workdir: pathlib.Path, cloud, label: str, attack_class, tree: pathlib.Path, log) -> dict:
    port = free_port()
    conf = write_conf(workdir / f"attack-{port}.conf", db.url(cloud.api_db), db.url(cloud.cell_dbs[0]), port)
    refresh(db, cloud)
    with Exporter(conf, port, "mysqldb", workdir / f"attack-{port}.log", tree=tree) as exporter:
        scrape(port)
        scrape(port, gzipped=False)
        quiet = _timed_scrapes(port, NORMAL_SCRAPES)
        time.sleep(1)
        before = proc_status(exporter.pid)
        stop, peak = threading.Event(), {}
        sampler = threading.Thread(target=_sampled, args=(exporter.pid, stop, peak), daemon=True)
        sampler.start()
        attack = attack_class(port).start()
        errors = []
        try:
            time.sleep(1)
            try:
                during = _timed_scrapes(port, NORMAL_SCRAPES)
            except (OSError, RuntimeError) as exc:  # the exporter did not answer: that is the finding
                during, errors = None, [f"{type(exc).__name__}: {exc}"]
            time.sleep(max(0.0, WINDOW - 1 - (during.median * NORMAL_SCRAPES if during else 0)))
        finally:
            attack.end()
            stop.set()
            sampler.join()
        time.sleep(AFTER)
        after = proc_status(exporter.pid)
        log(
            f"  {label}: quiet {quiet.median * 1000:.0f} ms, during "
            f"{during.median * 1000 if during else float('nan'):.0f} ms, peak {peak.get('rss_kb', 0) / 1024:.0f} MB "
            f"{peak.get('threads')} threads"
        )
        return {
            "attack": label,
            "services": cloud.size,
            "quiet": quiet,
            "during": during,
            "errors": errors,
            "before": before,
            "peak": peak,
            "after": after,
        }


def attacks(db, workdir: pathlib.Path, baseline: str | None, log) -> dict:
    clouds = {}
    for size, cells in ((10_000, 10), (40_000, 20)):
        log(f"building {size} services in {cells} cells")
        clouds[size] = build(db, size, cells, db.url)
    variants = [("this tree", REPO)] + ([(f"at {baseline}", tree_of(baseline, workdir))] if baseline else [])
    results = []
    for name, tree in variants:
        log(f"exporter: {name}")
        for label, (attack_class, size) in ATTACKS.items():
            results.append({"exporter": name, **one_attack(db, workdir, clouds[size], label, attack_class, tree, log)})
    return {"results": results, "window_s": WINDOW, "after_s": AFTER}
