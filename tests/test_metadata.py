"""pyproject.toml says what is true: the Python that is tested, extras that each say one thing, and a
floor for every dependency (scripts/test --lowest installs and tests exactly those floors)."""

from __future__ import annotations

import pathlib
import re
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
sys.path.insert(0, str(ROOT / "scripts"))

import floors  # noqa: E402


def test_requires_python_is_the_lowest_classified_python_and_the_one_running():
    floor = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])
    assert floor, PROJECT["requires-python"]
    classified = [
        int(c.rsplit(".", 1)[1])
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classified and min(classified) == int(floor.group(1))
    assert sys.version_info[:2] >= (3, int(floor.group(1)))


def test_fast_is_exactly_the_union_of_the_single_choice_extras():
    extras = PROJECT["optional-dependencies"]
    assert extras["mysqlclient"] == [r for r in extras["fast"] if r.startswith("mysqlclient")]
    assert extras["isal"] == [r for r in extras["fast"] if r.startswith("isal")]
    assert sorted(extras["fast"]) == sorted(extras["mysqlclient"] + extras["isal"])


def test_every_runtime_dependency_has_a_floor_to_test():
    pins = floors.pins(["fast"])
    names = [p.split("==")[0] for p in pins]
    assert len(names) == len(set(names)) == len(PROJECT["dependencies"]) + 2
    assert all(re.fullmatch(r"[\w.-]+==[\w.]+", p) for p in pins), pins


@pytest.mark.parametrize("requirement", ["PyYAML", "PyYAML==6.0", "PyYAML<7"])
def test_a_dependency_without_a_floor_is_refused(requirement):
    with pytest.raises(SystemExit, match=f"'{requirement}' has no `>=` floor"):
        floors.pins([], {"dependencies": [requirement]})


def test_floors_read_extras_markers_and_upper_bounds():
    project = {
        "dependencies": ["a[x]>=1.2; python_version >= '3.11'", "B >= 2, <3"],
        "optional-dependencies": {"e": ["c>=0.1", "a>=1.2"]},
    }
    assert floors.pins(["e"], project) == ["a==1.2", "B==2", "c==0.1"]
