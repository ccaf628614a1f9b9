"""The systemd units in deploy/systemd: accepted by systemd itself, sandboxed, and their command line
accepted by the real exporter."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sysconfig

import pytest
from cloud import insert_services, service
from helpers import list_json, run_cli
from oslo_config import cfg

from openstack_service_exporter import config
from openstack_service_exporter.sources import SOURCES

DEPLOY = pathlib.Path(__file__).resolve().parent.parent / "deploy"
SYSTEMD = DEPLOY / "systemd"
UNIT = "openstack-service-exporter.service"
TEMPLATE = "openstack-service-exporter@.service"
INSTALLED_BINARY = "/usr/local/bin/openstack-service-exporter"  # where `pip install .` as root puts it
ETC = "/etc/openstack-service-exporter/"
NOVA_CONF = "/etc/nova/nova.conf"
EXAMPLE_SETTING = re.compile(r"#(\[\w+\]$|\w+ =)")
MAX_EXPOSURE = 20  # `systemd-analyze security --threshold` counts tenths: an exposure of 2.0 of 10 at most


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (.ci/run does)", pytrace=False)
    return found


def console_script() -> pathlib.Path:
    """The console script of this very installation (pip install -e puts it beside the interpreter)."""
    script = pathlib.Path(sysconfig.get_path("scripts")) / "openstack-service-exporter"
    if not os.access(script, os.X_OK):
        found = shutil.which("openstack-service-exporter")
        if not found:
            pytest.fail("console script openstack-service-exporter is not installed: pip install -e .", pytrace=False)
        script = pathlib.Path(found)
    return script


@pytest.fixture
def staged(tmp_path) -> pathlib.Path:
    """Copies of the units whose ExecStart names the installed console script.

    `systemd-analyze verify` fails a unit whose ExecStart binary does not exist. The units name
    /usr/local/bin (where `pip install .` as root puts it); this machine's installation may be elsewhere
    (a virtualenv, an editable install), so the copies point at the real script instead: everything
    else in them is verified exactly as committed.
    """
    for name in (UNIT, TEMPLATE):
        text = (SYSTEMD / name).read_text()
        assert INSTALLED_BINARY in text, f"{name}: ExecStart no longer names {INSTALLED_BINARY}"
        (tmp_path / name).write_text(text.replace(INSTALLED_BINARY, str(console_script())))
    # An instance, as `systemctl enable openstack-service-exporter@regionone` makes it: a link to the template.
    (tmp_path / "openstack-service-exporter@regionone.service").symlink_to(TEMPLATE)
    return tmp_path


def analyze(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    return subprocess.run([systemd_analyze(), *args], capture_output=True, text=True, env=env, timeout=120)


def verify_problems(unit: pathlib.Path) -> list[str]:
    """Every line systemd prints about our unit files (warnings included: an unknown or misspelt key is
    only a warning, with exit status 0). Lines about the host's own units are not ours to judge."""
    result = analyze("verify", "--man=no", str(unit))
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "openstack-service-exporter" in line]
    if result.returncode != 0 and not lines:
        lines = [f"exit status {result.returncode}: {result.stderr.strip()}"]
    return lines


@pytest.mark.parametrize("name", [UNIT, TEMPLATE, "openstack-service-exporter@regionone.service"])
def test_systemd_accepts_the_unit_without_a_single_warning(staged, name):
    assert verify_problems(staged / name) == []


def test_verify_would_catch_a_misspelt_directive(staged):
    """The check above can fail: one unknown key is reported."""
    unit = staged / UNIT
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    problems = verify_problems(unit)
    assert any("ProtectHomes" in line for line in problems), problems


@pytest.mark.parametrize("name", [UNIT, "openstack-service-exporter@regionone.service"])
def test_sandbox_exposure_stays_low(staged, name):
    result = analyze("security", "--offline=true", f"--threshold={MAX_EXPOSURE}", "--no-pager", str(staged / name))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def service_section(name: str) -> dict[str, list[str]]:
    """[Service] directives of a unit: key -> values in order (keys such as SystemCallFilter repeat)."""
    directives: dict[str, list[str]] = {}
    section = None
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            directives.setdefault(key, []).append(value)
    return directives


def test_template_has_the_same_sandbox_as_the_unit():
    unit, template = service_section(UNIT), service_section(TEMPLATE)
    differing = {k for k in unit.keys() | template.keys() if unit.get(k) != template.get(k)}
    assert differing == {"EnvironmentFile", "ExecStart"}


def test_the_sandbox_asked_for_is_there():
    unit = service_section(UNIT)
    expected = {
        "DynamicUser": ["yes"],
        "SupplementaryGroups": ["nova"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "NoNewPrivileges": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "ProtectKernelTunables": ["yes"],
        "ProtectKernelModules": ["yes"],
        "ProtectKernelLogs": ["yes"],
        "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"],
        "CapabilityBoundingSet": [""],
        "Restart": ["on-failure"],
    }
    assert {k: unit.get(k) for k in expected} == expected
    assert unit["SystemCallFilter"][0] == "@system-service"
    assert unit["MemoryMax"][0].endswith("M")


def exec_start(name: str, env_file: pathlib.Path | None, instance: str = "") -> list[str]:
    """The argv systemd runs: %i replaced, $EXPORTER_ARGS from the env file split into words."""
    line = service_section(name)["ExecStart"][0].replace("%i", instance)
    variables = {}
    if env_file is not None:
        for raw in env_file.read_text().splitlines():
            if raw.strip() and not raw.lstrip().startswith("#"):
                key, _, value = raw.partition("=")
                variables[key.strip()] = " ".join(shlex.split(value))
    argv = []
    for word in line.split():
        if word.startswith("$"):
            argv.extend(variables.get(word[1:], "").split())  # unset: no word at all, like systemd
        else:
            argv.append(word)
    return argv


def run_list(argv: list[str]) -> list[dict]:
    """The unit's command line with `list --format json` in place of `serve`: same options, one reading."""
    assert argv[0] == INSTALLED_BINARY and argv[-1] == "serve", argv
    return list_json(argv[1:-1])


def test_the_unit_command_line_reads_nova_conf_and_the_example_fragment(mariadb, new_db, tmp_path):
    db = new_db("services")
    insert_services(mariadb, db, [service("compute-1")])
    nova_conf = tmp_path / "nova.conf"
    nova_conf.write_text(f"[DEFAULT]\nservice_down_time = 60\n[database]\nconnection = {mariadb.url(db)}\n")
    argv = exec_start(UNIT, SYSTEMD / "openstack-service-exporter.env")
    # The files the unit would read on a real host, mapped to this test's copies.
    mapped = {NOVA_CONF: str(nova_conf), ETC + "exporter.conf": str(DEPLOY / "exporter.conf.example")}
    assert set(mapped) <= set(argv), argv
    rows = run_list([mapped.get(word, word) for word in argv])
    assert [(r["host"], r["binary"]) for r in rows] == [("compute-1", "nova-compute")]


def test_an_instance_reads_its_own_files(mariadb, new_db, tmp_path):
    db = new_db("services")
    insert_services(mariadb, db, [service("compute-9")])
    (tmp_path / "regionone.conf").write_text(
        f"[exporter]\nlisten_address = 127.0.0.1:9186\n[database]\nconnection = {mariadb.url(db)}\n"
    )
    argv = exec_start(TEMPLATE, None, "regionone")  # the optional env file is absent
    assert ETC + "regionone.conf" in argv, argv
    rows = run_list([word.replace(ETC, f"{tmp_path}/") for word in argv])
    assert [r["host"] for r in rows] == ["compute-9"]


def test_a_configuration_error_is_the_exit_status_systemd_does_not_restart(tmp_path):
    """RestartPreventExitStatus: a missing nova.conf will still be missing after a restart."""
    (status,) = service_section(UNIT)["RestartPreventExitStatus"]
    argv = exec_start(UNIT, SYSTEMD / "openstack-service-exporter.env")
    mapped = {NOVA_CONF: str(tmp_path / "absent.conf"), ETC + "exporter.conf": str(DEPLOY / "exporter.conf.example")}
    code, _, err = run_cli([mapped.get(word, word) for word in argv[1:]])
    assert code == int(status), err
    assert "absent.conf" in err


def uncommented_example(tmp_path: pathlib.Path) -> pathlib.Path:
    """deploy/exporter.conf.example with its commented settings (`#key = value`, `#[SECTION]`) made live."""
    text = "\n".join(
        line[1:] if EXAMPLE_SETTING.match(line) else line
        for line in (DEPLOY / "exporter.conf.example").read_text().splitlines()
    )
    path = tmp_path / "exporter.conf"
    path.write_text(text + "\n")
    return path


def test_every_option_of_the_example_fragment_exists(tmp_path):
    """oslo.config ignores unknown options in a file: a misspelt one would silently do nothing."""
    sections: dict = {}
    cfg.ConfigParser(str(uncommented_example(tmp_path)), sections).parse()
    known = {group or "DEFAULT": {o.dest for o in opts} for group, opts in config.option_groups(SOURCES).items()}
    assert set(sections) == {"exporter", "DEFAULT"}
    assert set(sections["exporter"]) == known["exporter"]  # every [exporter] option is documented
    assert set(sections["DEFAULT"]) <= known["DEFAULT"]


def test_the_example_fragment_states_the_defaults(tmp_path):
    """Each commented setting shows the default: made live, the settings must not change
    (but for web_config_file, whose default is none and whose example is a path)."""
    conf = config.new_config(SOURCES)
    config.parse(conf, ["--config-file", str(uncommented_example(tmp_path))], SOURCES, default_config_files=[])
    settings = config.settings_from(conf, SOURCES)
    assert settings.web_config_file is not None
    assert dataclasses.replace(settings, web_config_file=None) == config.Settings()
