"""grafana/: the committed files are what grafana/build.py writes, every query uses metrics the exporter
really exposes (from a real scrape) or rules.yml records, and the dashboard and rules hang together."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from promserver import (
    GRAFANA,
    PROMETHEUS_NAMES,
    alert_rule_queries,
    dashboard_queries,
    demo_families,
    grafana_builder,
    info_joins,
    info_labels,
    metric_names,
    pending_families,
    recorded_names,
    variable_selectors,
)

build = grafana_builder()
DASHBOARD = json.loads(build.DASHBOARD.read_text())
ALERT_RULES = yaml.safe_load(build.ALERT_RULES.read_text())
RULES = build.alerts_by_name(build.load_rules())
GRAFANA_RULES = {r["title"]: r for g in ALERT_RULES["groups"] for r in g["rules"]}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


def test_committed_files_are_the_builders_output():
    for path, text in build.outputs().items():
        assert path.read_text() == text, f"{path.name} is out of date: run python3 grafana/build.py"
    result = subprocess.run([sys.executable, str(GRAFANA / "build.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def all_queries() -> list[tuple[str, str]]:
    return (
        dashboard_queries(DASHBOARD)
        + alert_rule_queries(ALERT_RULES)
        + [(name, selector) for name, selector, _ in variable_selectors(DASHBOARD)]
    )


def test_every_query_uses_metrics_the_exporter_exposes_or_rules_record():
    known = set(demo_families()) | recorded_names() | PROMETHEUS_NAMES | pending_families()
    for where, expr in all_queries():
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        assert names <= known, f"{where}: unknown metrics {names - known} in {expr}"


def test_dashboard_variables():
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    selectors = {name: (selector, label) for name, selector, label in variable_selectors(DASHBOARD)}
    assert selectors["project"] == ("service_up", "project")
    for name in ("cell", "zone", "binary", "host"):
        assert selectors[name][0].startswith('service_up{project=~"$project"') and selectors[name][1] == name
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    for where, expr in dashboard_queries(DASHBOARD):
        used = set(re.findall(r"\$(\w+)", expr))
        assert used <= set(variables) | BUILTIN_VARIABLES, f"{where}: undefined variables in {expr}"


def panels() -> list[dict]:
    return DASHBOARD["panels"]


def test_every_panel_follows_the_datasource_variable():
    for p in panels():
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"] and all(t["datasource"] == p["datasource"] for t in p["targets"]), p["title"]
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), p["title"]
            assert p["description"], p["title"]


def test_layout_ids_unique_and_no_overlap():
    ids = [p["id"] for p in panels()]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in panels():
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"{p['title']} overlaps another panel"
        cells |= area


def panel_with(kind: str, *metrics: str) -> dict:
    for p in panels():
        names = set().union(*(metric_names(t["expr"]) for t in p.get("targets", [])))
        if p["type"] == kind and set(metrics) <= names:
            return p
    raise AssertionError(f"no {kind} panel using {metrics}")


def test_the_panels_the_on_call_person_needs():
    table = panel_with("table", "service_up", "service_disabled", "service_heartbeat_age_seconds", "service_info")
    renamed = {o["matcher"]["options"]: o["properties"][0]["value"] for o in table["fieldConfig"]["overrides"]}
    assert {"state", "status", "heartbeat age"} <= set(renamed.values())
    assert [t for t in table["transformations"] if t["id"] == "merge"]
    panel_with("table", "cell_zone_binary:service_up:count", "cell_zone_binary:service_disabled:sum")
    panel_with("timeseries", "service_heartbeat_age_seconds", "service_down_time_seconds")
    panel_with("state-timeline", "service_up")
    panel_with("timeseries", "zone:service_compute_down:ratio", "zone:service_compute_down:ratio_threshold")
    panel_with("state-timeline", "service_exporter_database_up")
    panel_with("timeseries", "service_exporter_query_duration_seconds")
    panel_with("timeseries", "service_exporter_clock_skew_seconds")
    rate = [e for _, e in dashboard_queries(DASHBOARD) if "$__rate_interval" in e]
    assert rate and all("service_reports_total" in e for e in rate)


def titled(title: str) -> dict:
    return next(p for p in panels() if p["title"] == title)


def test_the_panels_of_each_project():
    cinder = titled("Cinder volume services by backend")
    assert all(metric_names(t["expr"]) == {"zone_backend:service_volume_up:count"} for t in cinder["targets"][:1])
    assert all("by (zone, backend)" in t["expr"] for t in cinder["targets"])
    neutron = titled("Neutron agents by type and zone")
    assert {"service_info", "service_up", "service_disabled"} <= set().union(
        *(metric_names(t["expr"]) for t in neutron["targets"])
    )
    assert all("by (agent_type, zone)" in t["expr"] and 'project="neutron"' in t["expr"] for t in neutron["targets"])
    assert metric_names(titled("OVN agents")["targets"][0]["expr"]) == {"service_exporter_source_partial"}
    ping = titled("Last OVN ping")
    assert metric_names(ping["targets"][0]["expr"]) == {"service_ovn_liveness_check_timestamp_seconds"}
    stale = float(build.split_alert(RULES["NeutronOVNLivenessCheckStale"]["expr"]).threshold)
    assert [s["value"] for s in ping["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, stale]
    orphans = titled("Orphaned OVN chassis")["targets"][0]["expr"]
    assert metric_names(orphans) == {"service_exporter_ovn_orphaned_chassis"}
    ovn_down = titled("OVN agents not alive, by type")["targets"][0]["expr"]
    assert "by (agent_type)" in ovn_down and 'binary=~"ovn-controller|neutron-ovn-.*"' in ovn_down
    groups = titled("Ironic conductor groups")
    assert all("by (conductor_group)" in t["expr"] and 'project="ironic"' in t["expr"] for t in groups["targets"])
    conductors = titled("Ironic conductors")
    assert [metric_names(t["expr"]) for t in conductors["targets"]] == [
        {"service_up"},
        {"service_online"},
        {"service_heartbeat_age_seconds"},
        {"service_info"},
    ]
    assert conductors["transformations"][1]["options"]["indexByName"]["conductor_group"] == 0


def test_every_service_info_join_ignores_exactly_the_info_labels():
    joins = [join for _, expr in all_queries() for join in info_joins(expr)]
    assert {project for project, _ in joins} >= {"neutron", "ironic"}
    for project, ignored in joins:
        assert ignored == info_labels(project), project


def test_dashboard_thresholds_come_from_the_rules():
    skew = panel_with("timeseries", "service_exporter_clock_skew_seconds")
    limit = float(build.split_alert(RULES["NovaExporterClockSkew"]["expr"]).threshold)
    steps = [s["value"] for s in skew["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, -limit, limit]


def test_grafana_rules_mirror_every_prometheus_alert():
    assert list(GRAFANA_RULES) == list(RULES)
    for name, alert in RULES.items():
        rule = GRAFANA_RULES[name]
        assert rule["for"] == alert["for"] and rule["labels"] == alert["labels"], name
        assert set(rule["annotations"]) == set(alert["annotations"]), name
        assert rule["annotations"]["summary"] == alert["annotations"]["summary"].replace("$value", "$values.B.Value")
        refs = [d["refId"] for d in rule["data"]]
        assert len(refs) == len(set(refs)) and rule["condition"] == refs[-1], name
        for d in rule["data"]:
            model = d["model"]
            if d["datasourceUid"] == "__expr__":
                inputs = (
                    [model["expression"]] if model["type"] == "reduce" else re.findall(r"\$(\w+)", model["expression"])
                )
                assert set(inputs) <= set(refs[: refs.index(d["refId"])]), f"{name}: {d['refId']} reads a later ref"
            else:
                assert d["datasourceUid"] == model["datasource"]["uid"] == build.DATASOURCE_UID


def test_rule_uids_are_valid_and_unique():
    uids = [r["uid"] for r in GRAFANA_RULES.values()]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)


def test_provisioning_files():
    assert ALERT_RULES["apiVersion"] == 1 and ALERT_RULES["groups"][0]["folder"]
    datasources = yaml.safe_load(build.DATASOURCES.read_text())
    assert datasources["datasources"][0]["uid"] == build.DATASOURCE_UID
    assert datasources["datasources"][0]["type"] == "prometheus"
    provider = yaml.safe_load(build.DASHBOARD_PROVIDER.read_text())
    assert provider["providers"][0]["type"] == "file"


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("(a unless (b == 1 or c == 1)) == 0", ("a unless (b == 1 or c == 1)", "==", "0")),
        ('x{l=~"a>b|c==d"} > 3', ('x{l=~"a>b|c==d"}', ">", "3")),
        ("max without (host) (a) <= -5.5", ("max without (host) (a)", "<=", "-5.5")),
        ("ratio > on() group_left() threshold", ("ratio", ">", "threshold")),
        ('absent(up{job="j"})', ('count(up{job="j"}) or vector(0)', "==", "0")),
        ("(a) + (b) != 1", ("(a) + (b)", "!=", "1")),
    ],
)
def test_split_alert(expr, expected):
    cond = build.split_alert(expr)
    assert (cond.query, cond.op, cond.threshold) == expected


@pytest.mark.parametrize("expr", ["a == 0 and b == 0", "a", "a > b", "a > bool 1"])
def test_split_alert_refuses_other_shapes(expr):
    with pytest.raises(ValueError):
        build.split_alert(expr)
