"""nova.conf (through oslo.config) and the [exporter] section -> Settings.

Nova's options are declared here with Nova's own names, groups and defaults (nova/conf/service.py,
servicegroup.py, availability_zone.py, database.py) so that the exporter reads the very nova.conf
that nova-api reads and judges with the same threshold. Each run parses into its own ConfigOpts:
there is no process-wide configuration object.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from dataclasses import dataclass

from oslo_config import cfg

from . import __version__

DEFAULT_PORT = 9185

NOVA_DEFAULT_OPTS = [
    cfg.IntOpt("service_down_time", default=60,
               help="Maximum seconds since a service's last heartbeat for Nova to call it up."),
    cfg.IntOpt("report_interval", default=10,
               help="Seconds between heartbeats; a down time not above it is replaced by 2.5 x it."),
    cfg.StrOpt("servicegroup_driver", default="db", choices=["db", "mc"],
               help="Where Nova's heartbeats go. Only 'db' leaves them where this exporter can read them."),
    cfg.StrOpt("default_availability_zone", default="nova",
               help="Zone of a compute host that is in no aggregate with availability_zone metadata."),
    cfg.StrOpt("internal_service_availability_zone", default="internal",
               help="Zone of every service that is not a compute."),
]
NOVA_DATABASE_OPTS = [
    cfg.StrOpt("connection", secret=True,
               help="SQLAlchemy URL of the cell database (also the base of templated cell URLs)."),
]
NOVA_API_DATABASE_OPTS = [
    cfg.StrOpt("connection", secret=True,
               help="SQLAlchemy URL of the API database, where cells and availability zones live."),
]
EXPORTER_OPTS = [
    cfg.StrOpt("listen_address", default=f"0.0.0.0:{DEFAULT_PORT}",
               help="host:port to serve /metrics on; [::]:port for IPv6."),
    cfg.StrOpt("metric_prefix", default="",
               help="Text put before every metric name, e.g. openstack_nova_."),
    cfg.FloatOpt("query_timeout", default=10.0, min=0.1,
                 help="Seconds one database may take to connect and answer; also bounds a scrape."),
    cfg.FloatOpt("min_interval", default=0.0, min=0.0,
                 help="Seconds during which a scrape reuses the previous reading instead of querying again."),
    cfg.IntOpt("cell_concurrency", default=8, min=1,
               help="How many cell databases are read at the same time."),
    cfg.StrOpt("web_config_file",
               help="Prometheus exporter web configuration file (TLS, basic auth) for the HTTP server."),
    cfg.StrOpt("log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
               help="Logging threshold; logs never contain database passwords."),
]

GROUPS = {None: NOVA_DEFAULT_OPTS, "database": NOVA_DATABASE_OPTS,
          "api_database": NOVA_API_DATABASE_OPTS, "exporter": EXPORTER_OPTS}


class ConfigError(Exception):
    """A configuration the exporter cannot run with; the message is shown to the operator as is."""


@dataclass(frozen=True)
class Settings:
    service_down_time: int = 60
    report_interval: int = 10
    servicegroup_driver: str = "db"
    default_availability_zone: str = "nova"
    internal_service_availability_zone: str = "internal"
    database_connection: str | None = None
    api_database_connection: str | None = None
    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_PORT
    metric_prefix: str = ""
    query_timeout: float = 10.0
    min_interval: float = 0.0
    cell_concurrency: int = 8
    web_config_file: str | None = None
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if self.metric_prefix and not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", self.metric_prefix):
            raise ConfigError(
                f"[exporter] metric_prefix {self.metric_prefix!r} is not a valid start of a metric name "
                "(letters, digits, '_' and ':', not starting with a digit)")
        # NOTE: oslo's min= lets nan and inf through (nan < min is false): a nan budget makes every
        # scrape fail, an inf one or an inf min_interval freezes the readings for good.
        if not (math.isfinite(self.query_timeout) and self.query_timeout > 0):
            raise ConfigError(f"[exporter] query_timeout {self.query_timeout!r} must be a finite number of seconds above 0")
        if not (math.isfinite(self.min_interval) and self.min_interval >= 0):
            raise ConfigError(f"[exporter] min_interval {self.min_interval!r} must be a finite number of seconds, 0 or more")


def parse_listen_address(value: str) -> tuple[str, int]:
    """'host:port', '[v6]:port' or ':port' (all interfaces)."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]*):(\d+)", value.strip())
    if not m:
        raise ConfigError(f"[exporter] listen_address {value!r} is not host:port (or [ipv6]:port)")
    host = m.group(1) if m.group(1) is not None else (m.group(3) or "0.0.0.0")
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        raise ConfigError(f"[exporter] listen_address {value!r}: port {port} is out of range")
    return host, port


def new_config() -> cfg.ConfigOpts:
    """A private ConfigOpts with every option registered, each also settable on the command line."""
    conf = cfg.ConfigOpts()
    for group, opts in GROUPS.items():
        conf.register_cli_opts(opts, group=group)
    return conf


def value_flags() -> set[str]:
    """Command-line flags that take a value (so their value is not mistaken for a subcommand)."""
    flags = {"--config-file", "--config-dir", "--shell_completion"}
    for group, opts in GROUPS.items():
        prefix = f"--{group}-" if group else "--"
        flags.update(prefix + o.dest for o in opts)
    return flags


def parse(conf: cfg.ConfigOpts, argv: list[str], default_config_files: list[str] | None = None) -> None:
    """Parse argv and the config files; oslo.config errors become ConfigError with its message."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            conf(argv, project="nova", prog="openstack-service-exporter", version=__version__,
                 default_config_files=default_config_files)
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigFilesPermissionDeniedError,
            cfg.ConfigDirNotFoundError, cfg.ConfigFileParseError) as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:  # e.g. a directory given as --config-file
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # oslo.config reads the files as UTF-8 and lets this through
        raise ConfigError(f"a configuration file is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except SystemExit as exc:
        said = errors.getvalue().strip()
        if exc.code == 1 and said:  # oslo.config's "Invalid Integer value" and the like
            raise ConfigError(said.splitlines()[-1]) from None
        sys.stderr.write(errors.getvalue())  # argparse's usage errors and --help keep their own form
        raise
    sys.stderr.write(errors.getvalue())
    try:
        for group, opts in GROUPS.items():
            node = conf[group] if group else conf
            for opt in opts:
                getattr(node, opt.dest)  # oslo checks types and choices lazily: force it now
    except (cfg.ConfigFileValueError, ValueError) as exc:
        raise ConfigError(f"invalid value in the configuration: {exc}") from None


def settings_from(conf: cfg.ConfigOpts) -> Settings:
    host, port = parse_listen_address(conf.exporter.listen_address)
    return Settings(
        service_down_time=conf.service_down_time,
        report_interval=conf.report_interval,
        servicegroup_driver=conf.servicegroup_driver,
        default_availability_zone=conf.default_availability_zone,
        internal_service_availability_zone=conf.internal_service_availability_zone,
        database_connection=conf.database.connection or None,
        api_database_connection=conf.api_database.connection or None,
        listen_host=host,
        listen_port=port,
        metric_prefix=conf.exporter.metric_prefix,
        query_timeout=conf.exporter.query_timeout,
        min_interval=conf.exporter.min_interval,
        cell_concurrency=conf.exporter.cell_concurrency,
        web_config_file=conf.exporter.web_config_file,
        log_level=conf.exporter.log_level,
    )


def check_can_read_heartbeats(settings: Settings) -> None:
    """Refuse to judge when the database cannot hold the answer."""
    if settings.servicegroup_driver == "mc":
        raise ConfigError(
            "[DEFAULT] servicegroup_driver = mc: Nova keeps heartbeats in memcached, not in the database, "
            "so the database cannot tell which services are up; this exporter will not guess")
    if not settings.database_connection and not settings.api_database_connection:
        raise ConfigError(
            "no database to read: set [database] connection (one cell) or [api_database] connection "
            "(all cells) in nova.conf or with --database-connection / --api_database-connection")
