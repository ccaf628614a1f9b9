"""The exporter's own options ([exporter]) and every source's, parsed into Settings.

One private ConfigOpts per run: there is no process-wide configuration object. The exporter's files
and command line carry [exporter] and each source's own options (a source may read the files given
with --config-file as its project's own, or have its project's files named in its own section
([<project>] config_file, own_files_opts), read by read_own_files); each source turns them into its
configured form (sources/*).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from oslo_config import cfg

from . import __version__

if TYPE_CHECKING:
    from .sources.base import Configured, Source

DEFAULT_PORT = 9185

EXPORTER_OPTS = [
    cfg.StrOpt(
        "listen_address", default=f"0.0.0.0:{DEFAULT_PORT}", help="host:port to serve /metrics on; [::]:port for IPv6."
    ),
    cfg.StrOpt("metric_prefix", default="", help="Text put before every metric name, e.g. openstack_."),
    cfg.FloatOpt(
        "query_timeout",
        default=10.0,
        min=0.1,
        help="Seconds one database may take to connect and answer; also bounds a scrape.",
    ),
    cfg.FloatOpt(
        "min_interval",
        default=0.0,
        min=0.0,
        help="Seconds during which a scrape reuses the previous reading instead of querying again.",
    ),
    cfg.IntOpt("cell_concurrency", default=8, min=1, help="How many cell databases are read at the same time."),
    cfg.StrOpt(
        "web_config_file", help="Prometheus exporter web configuration file (TLS, basic auth) for the HTTP server."
    ),
    cfg.StrOpt(
        "log_level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Logging threshold; logs never contain database passwords.",
    ),
    cfg.StrOpt(
        "compatibility",
        default="",
        choices=["", "openstack-exporter"],
        help="Also expose another exporter's families for the same services, from the same reading, "
        "so that its alerts and dashboards keep working: 'openstack-exporter' adds "
        "<compatibility_prefix>_<project>_agent_state. Empty: none.",
    ),
    cfg.StrOpt(
        "compatibility_prefix",
        default="openstack",
        help="That exporter's own metric prefix (openstack-exporter's --prefix), put before its "
        "families' names; metric_prefix does not apply to them.",
    ),
]


class ConfigError(Exception):
    """A configuration the exporter cannot run with; the message is shown to the operator as is."""


@dataclass(frozen=True)
class Settings:
    """The exporter-wide settings and the configured sources, in the registry's order."""

    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_PORT
    metric_prefix: str = ""
    query_timeout: float = 10.0
    min_interval: float = 0.0
    cell_concurrency: int = 8
    web_config_file: str | None = None
    log_level: str = "INFO"
    compatibility: str = ""
    compatibility_prefix: str = "openstack"
    sources: tuple[Configured, ...] = ()

    def __post_init__(self) -> None:
        for name in ("metric_prefix", "compatibility_prefix"):
            prefix = getattr(self, name)
            if prefix and not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", prefix):
                raise ConfigError(
                    f"[exporter] {name} {prefix!r} is not a valid start of a metric name "
                    "(letters, digits, '_' and ':', not starting with a digit)"
                )
        # NOTE: oslo's min= lets nan and inf through (nan < min is false): a nan budget makes every
        # scrape fail, an inf one or an inf min_interval freezes the readings for good.
        if not (math.isfinite(self.query_timeout) and self.query_timeout > 0):
            raise ConfigError(
                f"[exporter] query_timeout {self.query_timeout!r} must be a finite number of seconds above 0"
            )
        if not (math.isfinite(self.min_interval) and self.min_interval >= 0):
            raise ConfigError(
                f"[exporter] min_interval {self.min_interval!r} must be a finite number of seconds, 0 or more"
            )

    def only(self, projects: Sequence[str]) -> Settings:
        """These settings with only the sources of `projects` (all when empty)."""
        return replace(self, sources=tuple(s for s in self.sources if not projects or s.source.project in projects))


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


def option_groups(sources: Sequence[Source]) -> dict[str | None, list[cfg.Opt]]:
    """Every option of the exporter's command line and files: each source's, then [exporter]."""
    groups: dict[str | None, list[cfg.Opt]] = {}
    for source in sources:
        for group, opts in source.option_groups().items():
            groups.setdefault(group, []).extend(opts)
    groups["exporter"] = EXPORTER_OPTS
    return groups


def new_config(sources: Sequence[Source]) -> cfg.ConfigOpts:
    """A private ConfigOpts with every option registered, each also settable on the command line."""
    conf = cfg.ConfigOpts()
    for group, opts in option_groups(sources).items():
        conf.register_cli_opts(opts, group=group)
    return conf


def value_flags(sources: Sequence[Source]) -> set[str]:
    """Command-line flags that take a value (so their value is not mistaken for a subcommand)."""
    flags = {"--config-file", "--config-dir", "--shell_completion"}
    for group, opts in option_groups(sources).items():
        prefix = f"--{group}-" if group else "--"
        flags.update(prefix + o.dest for o in opts)
    return flags


def parse(
    conf: cfg.ConfigOpts,
    argv: list[str],
    sources: Sequence[Source],
    default_config_files: list[str] | None = None,
    project: str | None = None,
) -> None:
    """Parse argv and the config files; oslo.config errors become ConfigError with its message.
    `project` names the files oslo.config looks for when no --config-file is given."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            conf(
                argv,
                project=project,
                prog="openstack-service-exporter",
                version=__version__,
                default_config_files=default_config_files,
            )
    except (
        cfg.ConfigFilesNotFoundError,
        cfg.ConfigFilesPermissionDeniedError,
        cfg.ConfigDirNotFoundError,
        cfg.ConfigFileParseError,
    ) as exc:
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
    check_values(conf, option_groups(sources))


def check_values(conf: cfg.ConfigOpts, groups: dict[str | None, list[cfg.Opt]]) -> None:
    """oslo.config checks types and choices lazily, at the first read of an option: force it now.
    The error names the option and says why; oslo's own text also prints an internal LocationInfo."""
    for group, opts in groups.items():
        node = conf[group] if group else conf
        for opt in opts:
            try:
                getattr(node, opt.dest)
            except (cfg.ConfigFileValueError, ValueError) as exc:
                why = str(exc).rpartition("is not valid: ")[2]
                raise ConfigError(
                    f"invalid value in the configuration: [{group or 'DEFAULT'}] {opt.dest}: {why}"
                ) from None


def settings_from(conf: cfg.ConfigOpts, sources: Sequence[Source]) -> Settings:
    """The exporter's settings with every source that is configured; a ConfigError when none is."""
    host, port = parse_listen_address(conf.exporter.listen_address)
    configured = tuple(c for c in (source.configure(conf) for source in sources) if c is not None)
    return Settings(
        listen_host=host,
        listen_port=port,
        metric_prefix=conf.exporter.metric_prefix,
        query_timeout=conf.exporter.query_timeout,
        min_interval=conf.exporter.min_interval,
        cell_concurrency=conf.exporter.cell_concurrency,
        web_config_file=conf.exporter.web_config_file,
        log_level=conf.exporter.log_level,
        compatibility=conf.exporter.compatibility,
        compatibility_prefix=conf.exporter.compatibility_prefix,
        sources=configured,
    )


def check_has_sources(settings: Settings, sources: Sequence[Source]) -> None:
    if not settings.sources:
        raise ConfigError(
            "nothing to read: configure at least one project ("
            + "; ".join(f"{s.project}: {s.hint}" for s in sources)
            + ")"
        )


def read_project_files(
    project: str, group: str, files: list[str], directory: str | None, groups: dict[str | None, list[cfg.Opt]]
) -> cfg.ConfigOpts:
    """A project's own configuration files in a private ConfigOpts with that
    project's options, read in place: later files win, then `directory`/*.conf."""
    conf = cfg.ConfigOpts()
    for name, opts in groups.items():
        conf.register_opts(opts, group=name)
    where = f"[{group}] config_file"
    try:
        conf(
            [],
            project=project,
            default_config_files=files,
            default_config_dirs=[directory] if directory else [],
            use_env=False,
        )
    except (
        cfg.ConfigFilesNotFoundError,
        cfg.ConfigFilesPermissionDeniedError,
        cfg.ConfigDirNotFoundError,
        cfg.ConfigFileParseError,
    ) as exc:
        raise ConfigError(f"{project}: {where}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{project}: {where}: cannot read {exc.filename}: {exc.strerror}") from None
    try:
        check_values(conf, groups)
    except ConfigError as exc:
        raise ConfigError(f"{project} ({', '.join(files)}): {exc}") from None
    return conf


def own_files_opts(project: str, daemon: str) -> list[cfg.Opt]:
    """[<project>] config_file and config_dir: where a project's own files are (those of `daemon`,
    whose verdict the source copies), for read_own_files."""
    return [
        cfg.MultiStrOpt(
            "config_file",
            default=[],
            help=f"The {project}.conf that {daemon} reads, read in place (repeatable; later "
            f"files win). {project.capitalize()} is read only when this is set.",
        ),
        cfg.StrOpt("config_dir", help=f"A directory of *.conf files read after config_file, as {daemon} would."),
    ]


def read_own_files(
    conf: cfg.ConfigOpts, project: str, groups: dict[str | None, list[cfg.Opt]]
) -> cfg.ConfigOpts | None:
    """The project's files named by [<project>] (own_files_opts) with the project's options `groups`,
    which hold [database] connection: None when config_file is not set (the project is not read),
    a ConfigError when the files name no database."""
    section = conf[project]
    files = list(section.config_file)
    if not files:
        return None
    own = read_project_files(project, project, files, section.config_dir, groups)
    if not own.database.connection:
        raise ConfigError(f"{project}: [database] connection is not set in {', '.join(files)}")
    return own


def load(argv: list[str], sources: Sequence[Source], default_config_files: list[str] | None = None) -> Settings:
    """Settings from a command line without a subcommand (for tools built on the exporter)."""
    conf = new_config(sources)
    parse(conf, argv, sources, default_config_files)
    return settings_from(conf, sources)
