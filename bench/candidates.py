"""python3 -m bench.candidates: the HTTP server libraries that could be the exporter's front door,
side by side under the same attacks, each serving a 1 MB body from its own process with its
documented limits set as close to the exporter's as it allows (bench/FRONTDOOR.md):

- 1,000 idle connections: RSS and threads while they are open;
- 20 requests of 100 header lines of 64 KiB at once: peak RSS, and what the clients got;
- one connection sending one byte of a header a second: whether it is closed within 20 s.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time

from .attacks import send_header_flood
from .servers import free_port, proc_status, terminate

BODY = 1 << 20
SERVERS = {
    "stdlib wsgiref + ThreadingMixIn": """
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server
class S(ThreadingMixIn, WSGIServer):
    daemon_threads = True
class H(__import__("wsgiref.simple_server").simple_server.WSGIRequestHandler):
    timeout = 60
    def log_message(self, *a): pass
def app(e, r):
    r("200 OK", [("Content-Length", str(len(BODY)))]); return [BODY]
make_server("127.0.0.1", PORT, app, server_class=S, handler_class=H).serve_forever()
""",
    "aiohttp (the exporter's FrontDoor)": """
import asyncio
from aiohttp import web
from openstack_service_exporter.server import HTTPServer
async def app(request):
    return web.Response(body=BODY)
HTTPServer(app, "127.0.0.1", PORT).serve_forever()
""",
    "uvicorn + h11": """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http": return
    headers = [(b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=PORT, http="h11", log_level="warning", limit_concurrency=512,
            timeout_keep_alive=75, h11_max_incomplete_event_size=32768)
""",
    "hypercorn": """
import asyncio
from hypercorn.asyncio import serve
from hypercorn.config import Config
async def app(scope, receive, send):
    if scope["type"] != "http": return
    headers = [(b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
c = Config(); c.bind = [f"127.0.0.1:{PORT}"]; c.h11_max_incomplete_size = 32768; c.read_timeout = 10
asyncio.run(serve(app, c))
""",
    "cheroot": """
from cheroot import wsgi
def app(e, r):
    r("200 OK", [("Content-Length", str(len(BODY)))]); return [BODY]
s = wsgi.Server(("127.0.0.1", PORT), app, numthreads=10, max=-1, request_queue_size=128, timeout=10)
s.max_request_header_size = 32768
s.start()
""",
}


def start(code: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", f"PORT = {port}; BODY = b'x' * {BODY}\n" + code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(12)[8:] == b" 200":
                return proc
        time.sleep(0.2)
    terminate(proc)
    raise RuntimeError(f"did not start: {proc.stderr.read().decode()[-500:]}")


def idle(port: int, pid: int) -> dict:
    sockets = []
    try:
        for _ in range(1000):
            sockets.append(socket.create_connection(("127.0.0.1", port), 5))
        time.sleep(2)
        status = proc_status(pid)
        return {"rss_kb": status["VmRSS"], "threads": status["Threads"]}
    finally:
        for s in sockets:
            s.close()


def flood(port: int, pid: int) -> dict:
    answers, peak, stop = [], {"rss_kb": 0}, threading.Event()

    def one():
        try:
            with socket.create_connection(("127.0.0.1", port), 30) as s:
                send_header_flood(s, b"/")
                answers.append(s.recv(12).decode(errors="replace") or "closed")
        except OSError as exc:
            answers.append(type(exc).__name__)

    def watch():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                peak["rss_kb"] = max(peak["rss_kb"], proc_status(pid)["VmRSS"])
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    time.sleep(1)
    stop.set()
    watcher.join()
    return {"peak_rss_kb": peak["rss_kb"], "answers": sorted(set(answers))}


def slowloris(port: int) -> float | None:
    """Seconds until a one-byte-a-second head is closed by the server (None: still open after 20 s)."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 20:
            try:
                s.send(b"X")
                s.settimeout(1)
                if s.recv(64) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - started
            time.sleep(0.01)
    return None


def main(names: list[str] | None = None) -> None:
    for name, code in SERVERS.items():
        if names and not any(n in name for n in names):
            continue
        port = free_port()
        try:
            proc = start(code, port)
        except RuntimeError as exc:
            print(name, exc, flush=True)
            continue
        try:
            quiet = proc_status(proc.pid)
            result = {
                "quiet_rss_kb": quiet["VmRSS"],
                "quiet_threads": quiet["Threads"],
                "idle_1000": idle(port, proc.pid),
            }
            time.sleep(1)
            result["flood"] = flood(port, proc.pid)
            result["slowloris_closed_after_s"] = slowloris(port)
        finally:
            terminate(proc)
        print(name, result, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
