"""Command line: global options (oslo.config), then a subcommand: serve (default), list, demo.

Wiring only; the work is done by the modules along the data's trip.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import gc
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, cast

from oslo_config import cfg

from . import config, demo, listing
from .coalesce import SharedReader
from .collector import judged_services
from .config import ConfigError, Settings
from .engines import driver_name, parse_url
from .http import MetricsApp, make_http_server
from .reader import Reader, wall_clock_us
from .sources import SOURCES

PROG = "openstack-service-exporter"
COMMANDS = ("serve", "list", "demo")
DEMO_HOST = "127.0.0.1"
LOG = logging.getLogger("exporter")


def _add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("serve", help="serve /metrics over HTTP (the default)")
    lister = subparsers.add_parser("list", help="print every service once, like nova-manage service list")
    lister.add_argument("--host", help="only this host (exact)")
    lister.add_argument("--binary", help="only this binary, e.g. nova-compute")
    lister.add_argument("--format", choices=("table", "json"), default="table")
    lister.add_argument(
        "--project", action="append", choices=[s.project for s in SOURCES], help="only this project (repeatable)"
    )
    demo_cmd = subparsers.add_parser(
        "demo", help="serve /metrics from an embedded demo cloud with simulated heartbeats"
    )
    demo_cmd.add_argument(
        "--report-interval",
        dest="demo_report_interval",
        type=float,
        default=2.0,
        help="seconds between simulated heartbeats",
    )
    demo_cmd.add_argument(
        "--service-down-time", dest="demo_down_time", type=int, default=10, help="down time threshold of the demo cloud"
    )
    demo_cmd.add_argument(
        "--period", dest="demo_period", type=float, default=60.0, help="seconds of one die-and-return cycle"
    )


def with_default_command(argv: list[str]) -> list[str]:
    """Append 'serve' when no subcommand is given (options' values are skipped, not taken for one)."""
    takes_value = config.value_flags(SOURCES)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            return argv
        if arg in takes_value:
            i += 1
        i += 1
    if any(a in ("-h", "--help", "--version") for a in argv):
        return argv
    return argv + ["serve"]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def error(message: str) -> int:
    one_line = " ".join(message.split())  # e.g. YAML parser messages span several lines
    print(f"{PROG}: error: {one_line}", file=sys.stderr)
    return 2


def database_driver(settings: Settings) -> str:
    """The driver of the first database configured (build_info's `driver` label)."""
    urls = [url for source in settings.sources for url in source.urls()]
    return driver_name(parse_url(urls[0])) if urls else ""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    conf = config.new_config(SOURCES)
    conf.register_cli_opt(cfg.SubCommandOpt("command", title="commands", handler=_add_commands))
    try:
        # NOTE: project="nova": with no --config-file, oslo.config looks for nova.conf where nova-api would.
        config.parse(conf, with_default_command(argv), SOURCES, project="nova")
        command = conf.command.name
        setup_logging(conf.exporter.log_level)
        if command == "demo":
            return run_demo(demo_settings(conf), conf.command)
        settings = config.settings_from(conf, SOURCES)
        config.check_has_sources(settings, SOURCES)
        if command == "list":
            return run_list(settings, conf.command)
        return run_serve(settings)
    except ConfigError as exc:
        return error(str(exc))


def run_list(settings: Settings, args: Any) -> int:
    """`list`; `args` is the subcommand's parsed arguments (conf.command)."""
    wanted = args.project or []
    missing = [p for p in wanted if p not in {s.source.project for s in settings.sources}]
    if missing:
        raise ConfigError(f"--project {missing[0]}: that project is not configured")
    settings = settings.only(wanted)
    reader = Reader(settings)
    try:
        snapshot = reader.read()
    finally:
        reader.close()
    services = listing.select(judged_services(snapshot), args.host, args.binary)
    print(listing.as_json(services) if args.format == "json" else listing.as_table(services))
    for source in settings.sources:
        for note in source.notes:
            print(f"{PROG}: note: {source.source.project}: {note}", file=sys.stderr)
    failed = [db for db in snapshot.databases if not db.up]
    for db in failed:
        name = f"database {db.cell}" if db.cell.startswith("(") else f"cell {db.cell!r}" if db.cell else "database"
        print(f"{PROG}: error: {db.project} {name}: {db.error}", file=sys.stderr)
    return 1 if failed else 0


def run_serve(settings: Settings, on_ready: Callable[[], object] | None = None) -> int:
    from .webconfig import load_web_config  # TLS and basic auth, when configured

    web = load_web_config(settings.web_config_file)
    reader = Reader(settings)
    app = MetricsApp(
        SharedReader(reader, settings.min_interval),
        settings,
        wall_clock_us,
        database_driver(settings),
        authorize=web.authorize,
        headers=web.headers,
    )
    try:
        server = make_http_server(app, settings.listen_host, settings.listen_port, web.ssl_context)
    except OSError as exc:
        app.close()
        reader.close()
        raise ConfigError(f"cannot listen on {settings.listen_host}:{settings.listen_port}: {exc.strerror}") from None
    scheme = "https" if web.ssl_context else "http"
    host, port = server.server_address[:2]
    LOG.info("serving %s://%s:%s/metrics", scheme, host if ":" not in host else f"[{host}]", port)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tune_gc()
    limit_malloc_arenas()
    if on_ready is not None:
        on_ready()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.close()
        reader.close()
    LOG.info("stopped")
    return 0


def tune_gc() -> None:
    """The garbage collector set for a server whose every reading makes tens of thousands of
    tuples and strings (rows, label sets, texts), none of them in a reference cycle: reference
    counting frees them, and a cyclic collection over them is wasted work. The start-up's objects
    (modules, SQLAlchemy, oslo.config) are frozen out of every collection, and young collections run
    every 50,000 allocations instead of 700 (bench/RESULTS.md, what-if: a scrape of 10,000 services
    87.5 -> 73.0 ms, of 100,000 1,066 -> 814 ms)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


# mallopt's parameter number for the arena limit (glibc's malloc.h)
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """What MALLOC_ARENA_MAX=2 does, unless the environment sets it: glibc gives each thread that
    allocates its own heap (up to 8 per core), and the C driver's result buffers, made by the
    cell-reader threads, would leave freed memory in each of them (bench/RESULTS.md, what-if:
    100,000 services with mysqlclient, 233 -> 205 MB peak). Nothing on other C libraries."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


def demo_settings(conf: cfg.ConfigOpts) -> Settings:
    """The exporter's own settings for the demo (its projects are the demo cloud's)."""
    settings = config.settings_from(conf, ())
    # An option has a location; oslo.config gives None only for a group looked up by name.
    where = cast(cfg.LocationInfo, conf.get_location("listen_address", "exporter"))
    if where.location == cfg.Locations.opt_default:
        # A demo is not for the network: loopback unless an address is given.
        settings = dataclasses.replace(settings, listen_host=DEMO_HOST)
    return settings


def run_demo(settings: Settings, args: Any) -> int:
    """`demo`; `args` is the subcommand's parsed arguments (conf.command)."""
    cloud = demo.build(period=args.demo_period, report_interval=args.demo_report_interval)
    settings = dataclasses.replace(
        settings,
        sources=demo.sources(
            cloud, down_time=args.demo_down_time, report_interval=max(1, int(args.demo_report_interval))
        ),
    )
    simulator = demo.Simulator(cloud)
    simulator.start()
    LOG.info(
        "demo cloud in %s: Nova (2 cells, zones az1 and az2), Cinder, Neutron and Ironic, down time %ss; "
        "%s, %s, %s, the Open vSwitch agent of %s and %s die and return every %gs",
        cloud.directory,
        args.demo_down_time,
        demo.DEAD_FIRST_HALF,
        demo.DEAD_SECOND_HALF,
        demo.DEAD_BACKEND,
        demo.DEAD_AGENT_HOST,
        demo.DEAD_CONDUCTOR,
        args.demo_period,
    )
    try:
        return run_serve(settings)
    finally:
        simulator.stop()
        cloud.stop()
        shutil.rmtree(cloud.directory, ignore_errors=True)
