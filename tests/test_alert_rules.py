"""deploy/prometheus/rules.yml: promtool's checks and unit tests, and what an on-call person needs in
every alert. Metric names are checked against a real scrape of the exporter."""

from __future__ import annotations

import re

import pytest
import yaml
from promserver import (
    PROMETHEUS_NAMES,
    RULE_TESTS,
    RULES,
    demo_families,
    info_joins,
    info_labels,
    metric_names,
    pending_families,
    promtool,
    recorded_names,
)

# Labels a summary must name when the firing alert carries them (the backend of a Cinder volume
# service, an Ironic conductor group, and the project unless the alert's name says it).
SERVICE_LABELS = ("cell", "binary", "host", "zone", "backend", "conductor_group")
PROJECT_NAMES = ("Nova", "Cinder", "Neutron", "Ironic")
RULES_DATA = yaml.safe_load(RULES.read_text())
ALERTS = {r["alert"]: r for g in RULES_DATA["groups"] for r in g["rules"] if "alert" in r}
TEST_FILES = sorted(RULE_TESTS.glob("*.yml"))


def rule_tests() -> list[dict]:
    """Every alert_rule_test entry of every promtool test file of rules.yml."""
    files = [yaml.safe_load(path.read_text()) for path in TEST_FILES]
    return [
        case
        for test in files
        if test["rule_files"] == ["../rules.yml"]
        for group in test["tests"]
        for case in group.get("alert_rule_test", [])
    ]


def test_promtool_check_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout


def test_promtool_unit_tests():
    assert TEST_FILES
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_is_tested_firing_and_not_firing(name):
    cases = [c for c in rule_tests() if c["alertname"] == name]
    assert any(c["exp_alerts"] for c in cases), f"{name}: no test where it fires"
    assert any(not c["exp_alerts"] for c in cases), f"{name}: no test where it stays quiet"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_tells_on_call_what_to_do(name):
    alert = ALERTS[name]
    assert alert["labels"]["severity"] in ("critical", "warning", "info")
    assert alert["annotations"]["summary"].strip()
    assert len(alert["annotations"]["description"].split()) >= 20, "a description an on-call person can act on"
    assert "for" in alert


def test_summaries_name_binary_host_zone_and_cell_when_the_alert_has_them():
    """A summary names each of cell, binary, host and zone that the firing alert carries (promtool's
    expected labels say which it carries; its run checks the rendered text)."""
    checked = set()
    for case in rule_tests():
        summary = ALERTS[case["alertname"]]["annotations"]["summary"]
        for expected in case["exp_alerts"]:
            named = SERVICE_LABELS if case["alertname"].startswith(PROJECT_NAMES) else SERVICE_LABELS + ("project",)
            for label in named:
                if label in expected["exp_labels"]:
                    assert f"$labels.{label} " in summary, f"{case['alertname']}: summary lacks {label}"
            checked.add(case["alertname"])
    assert checked == set(ALERTS)


def test_auto_disable_reason_is_called_out():
    description = ALERTS["NovaServiceDisabledLong"]["annotations"]["description"]
    assert 'match "^AUTO: " $labels.disabled_reason' in description


def test_rules_use_only_metrics_the_exporter_exposes():
    exposed = set(demo_families()) | PROMETHEUS_NAMES | pending_families()
    recorded = recorded_names()
    assert not recorded & exposed, "a recorded name must not shadow an exporter metric"
    for group in RULES_DATA["groups"]:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - exposed - recorded
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown metrics {unknown}"


def test_metric_names_use_the_default_empty_prefix():
    used = set().union(*(metric_names(r["expr"]) for g in RULES_DATA["groups"] for r in g["rules"]))
    assert "service_up" in used and not any(n.startswith("openstack_") for n in used)


def test_info_joins_ignore_exactly_the_info_labels():
    """NovaServiceDisabledLong, NeutronOVNGatewaysDown and IronicConductorGroupDown join service_info on
    every other label: if the exporter adds a label to a project's service_info, the join would silently
    match nothing."""
    joins = [join for alert in ALERTS.values() for join in info_joins(alert["expr"])]
    assert {project for project, _ in joins} == {"nova", "neutron", "ironic"}
    for project, ignored in joins:
        assert ignored == info_labels(project), project


def test_every_alert_selects_one_project_or_names_it():
    """A project's alert selects that project's series only, through the recorded series it reads
    too; the exporter's own alerts on every project name the project in their summary."""
    records = {r["record"]: r["expr"] for g in RULES_DATA["groups"] for r in g["rules"] if "record" in r}
    for name, alert in ALERTS.items():
        expr = " ".join([alert["expr"]] + [records[n] for n in metric_names(alert["expr"]) if n in records])
        projects = set(re.findall(r'project(=~|!=|=)"(\w*)"', expr))
        owner = next((p.lower() for p in PROJECT_NAMES if name.startswith(p)), None)
        if metric_names(expr) <= PROMETHEUS_NAMES:
            continue  # the scrape target's own health
        if owner:
            assert projects == {("=", owner)}, f"{name}: selects {projects}"
        else:
            assert "$labels.project " in alert["annotations"]["summary"], name


def test_readme_lists_every_alert():
    readme = (RULES.parent / "README.md").read_text()
    for name in ALERTS:
        assert f"| {name} |" in readme, name
