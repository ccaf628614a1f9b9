"""deploy/container/Dockerfile and .dockerignore, without a container engine: the build context the
Dockerfile gets holds what it copies and nothing else, its stage 1 (`pip wheel .`) really builds the
exporter from that context, and the image runs as a non-root user on the exporter's port."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from openstack_service_exporter import cli, config
from openstack_service_exporter.sources import SOURCES

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"


# -- the Dockerfile, read as an engine reads it ------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    joined, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in joined:
        word, _, rest = line.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def final_stage() -> dict[str, list[str]]:
    """Instructions of the image's own stage: name -> arguments of each occurrence."""
    found: dict[str, list[str]] = {}
    for name, args in stages()[-1]:
        found.setdefault(name, []).append(args)
    return found


def copy_sources() -> list[str]:
    """Sources of every COPY from the build context (COPY --from=<stage> reads a stage, not the context)."""
    sources = []
    for name, args in instructions():
        if name != "COPY":
            continue
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        sources.extend([w for w in words if not w.startswith("--")][:-1])
    return sources


def test_two_stages_on_python_3_11_slim():
    args = dict(a.split("=", 1) for n, a in instructions() if n == "ARG" and "=" in a)
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], s[0][1].split()[0]) for s in stages()]
    assert bases == ["python:3.11-slim", "python:3.11-slim"]
    assert any("pip wheel" in a for n, a in stages()[0] if n == "RUN")
    install = " ".join(a for n, a in stages()[1] if n == "RUN")
    assert "from=build" in install and "--no-index" in install  # stage 2 installs stage 1's wheels only


def test_the_image_has_the_fast_extra_and_the_library_it_loads():
    build = " ".join(a for n, a in stages()[0] if n == "RUN")
    assert "pip wheel" in build and "'.[fast]'" in build and "libmariadb-dev" in build
    assert "libmariadb3" in " ".join(final_stage()["RUN"])  # mysqlclient's C library at run time


def test_runs_as_a_numeric_non_root_user():
    user = final_stage()["USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0), user
    created = " ".join(final_stage()["RUN"])
    assert f"--uid {uid}" in created, "the USER must exist in /etc/passwd of the image"


def test_exposes_the_exporters_default_port():
    assert final_stage()["EXPOSE"] == [str(config.DEFAULT_PORT)]


def test_entrypoint_is_the_console_script_and_cmd_a_valid_command_line():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entrypoint = json.loads(final_stage()["ENTRYPOINT"][-1])
    assert entrypoint == ["openstack-service-exporter"]
    assert entrypoint[0] in project["scripts"]
    command = json.loads(final_stage()["CMD"][-1])
    assert command == ["--config-file", "/etc/nova/nova.conf", "serve"]
    assert command[0] in config.value_flags(SOURCES) and command[-1] in cli.COMMANDS


# -- the build context: .dockerignore as the engine applies it ---------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as a regex, by the engine's rules: `*` and `?` stop at '/', `**` does not."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


def dockerignore() -> list[tuple[bool, re.Pattern]]:
    """(is an exception, regex) per line of .dockerignore."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        path = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negated, _pattern_regex(path)))
    return rules


def ignored(path: str, rules) -> bool:
    """The last rule matching the path or one of its parent directories decides (moby's patternmatcher)."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    verdict = False
    for negated, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            verdict = not negated
    return verdict


def build_context() -> list[str]:
    """Every file of the repository tree that the engine would send, as relative paths."""
    rules, files = dockerignore(), []
    for directory, dirs, names in os.walk(ROOT):
        rel_dir = pathlib.Path(directory).relative_to(ROOT).as_posix()
        rel = (lambda n: n) if rel_dir == "." else (lambda n, d=rel_dir: f"{d}/{n}")
        # .git and virtualenvs are large: skip their insides once the directory itself is out.
        dirs[:] = [d for d in dirs if not (d == ".git" or d.startswith(".venv")) or not ignored(rel(d), rules)]
        files.extend(rel(n) for n in names if not ignored(rel(n), rules))
    return sorted(files)


def test_context_holds_the_package_and_nothing_else():
    context = build_context()
    package = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "openstack_service_exporter").glob("*.py"))
    assert set(package) <= set(context)
    assert "pyproject.toml" in context
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("readme")
    if readme and (ROOT / readme).exists():
        assert readme in context  # the wheel's long description
    unwanted = re.compile(
        r"(^|/)(tests|\.git|deploy|__pycache__|\.pytest_cache|\.hypothesis|[^/]*\.egg-info"
        r"|\.venv[^/]*|\.benchmarks|bench)(/|$)|\.pyc$"
    )
    assert [p for p in context if unwanted.search(p)] == []


def test_ignore_rules_read_as_the_engine_reads_them():
    """The matcher above is right where it matters: a directory rule takes its contents, and a later
    rule overrides an earlier one."""
    rules = dockerignore()
    assert ignored("tests/test_smoke_db.py", rules)
    assert ignored(".git/HEAD", rules)
    assert not ignored("openstack_service_exporter/cli.py", rules)
    assert ignored("openstack_service_exporter/__pycache__/cli.cpython-311.pyc", rules)


def test_every_copied_source_is_in_the_context():
    context = build_context()
    assert copy_sources(), "the Dockerfile copies nothing from the context"
    for source in copy_sources():
        prefix = os.path.normpath(source)
        present = context if prefix == "." else [p for p in context if p == prefix or p.startswith(prefix + "/")]
        assert present, f"COPY {source}: not in the build context"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """Stage 1's `pip wheel .`, run here on a copy of exactly the build context."""
    base = tmp_path_factory.mktemp("image-build")
    source, out = base / "src", base / "wheels"
    for rel in build_context():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, source / rel)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("openstack_service_exporter-*.whl")
    return built


def test_the_context_builds_a_wheel_with_the_package_and_the_console_script(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    package = {f"openstack_service_exporter/{p.name}" for p in (ROOT / "openstack_service_exporter").glob("*.py")}
    assert package <= names
    assert not any(n.startswith("tests/") for n in names)
    assert re.search(r"^openstack-service-exporter\s*=\s*openstack_service_exporter\.cli:main$", scripts, re.M), scripts
