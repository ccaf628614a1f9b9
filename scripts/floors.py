"""The floors of pyproject.toml as pins, one `name==version` a line: the runtime dependencies and the
extras named on the command line. scripts/test --lowest installs them, so a floor that is written
is a floor that is tested.

    python3 scripts/floors.py fast    # dependencies + the [fast] extra
"""

from __future__ import annotations

import pathlib
import re
import sys
import tomllib

PYPROJECT = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)\s*(?:,[^;]*)?(?:;.*)?$")


def pins(extras: list[str], project: dict | None = None) -> list[str]:
    project = project or tomllib.loads(PYPROJECT.read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    out: dict[str, str] = {}
    for requirement in wanted:
        match = FLOOR.match(requirement)
        if not match:  # an unbounded or exact requirement would leave the lowest run untested
            raise SystemExit(f"{PYPROJECT.name}: {requirement!r} has no `>=` floor")
        out[match.group(1).lower()] = f"{match.group(1)}=={match.group(2)}"
    return list(out.values())


if __name__ == "__main__":
    print("\n".join(pins(sys.argv[1:])))
