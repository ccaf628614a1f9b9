"""Many regions on Prometheus' own engines: the examples of deploy/prometheus/federation and
deploy/prometheus/remote-write are accepted by promtool, and the federation example works end to end.

Two regions, A and B: each an exporter on its own database of the test MariaDB, scraped by its own
Prometheus (deploy/prometheus/federation/region.yml, with external_labels {region}); one global
Prometheus (global.yml) federates both and evaluates global-rules.yml. The committed files are used
as they are, but for the addresses, 1 s intervals, no Alertmanager, and every `for:` divided by 60
(promserver.shortened_rules).
"""

from __future__ import annotations

import collections
import contextlib
import pathlib
import re

import pytest
import yaml
from cloud import insert_services, service
from promserver import JOB, Prometheus, promtool, shortened_rules, start_exporter, wait_for
from test_prometheus_e2e import Heartbeats, utcnow

PROMETHEUS_DIR = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
FEDERATION = PROMETHEUS_DIR / "federation"
EXAMPLES = [
    FEDERATION / "region.yml",
    FEDERATION / "global.yml",
    *sorted((PROMETHEUS_DIR / "remote-write").glob("*.yml")),
]
FAST = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
# Seconds without a heartbeat before Nova says down. Heartbeats come every second; a margin of
# several seconds keeps a live service up on a loaded machine, where region A must stay quiet.
DOWN_TIME = 8
STOPPED = "cmp-1"
HOSTS = [("ctl-1", "nova-conductor"), ("cmp-1", "nova-compute"), ("cmp-2", "nova-compute")]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_promtool_accepts_the_example(path):
    result = promtool("check", "config", str(path))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout


def test_every_example_labels_its_region_and_the_global_rules_keep_it():
    for path in EXAMPLES:
        if path.name != "global.yml":
            assert yaml.safe_load(path.read_text())["global"]["external_labels"]["region"], path
    (federate,) = yaml.safe_load((FEDERATION / "global.yml").read_text())["scrape_configs"]
    assert federate["honor_labels"] is True and federate["metrics_path"] == "/federate"
    rules = [r for g in yaml.safe_load((FEDERATION / "global-rules.yml").read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        for clause in re.findall(r"\b(by|on|without)\s*\(([^)]*)\)", rule["expr"]):
            keeps = "region" not in clause[1] if clause[0] == "without" else "region" in clause[1]
            assert keeps, f"{rule['alert']}: {clause[0]} ({clause[1]}) loses the region"


def adapted(example: str, rules: pathlib.Path, targets: list[str], region: str | None = None) -> dict:
    """An example configuration with the test's addresses, rules and intervals, without Alertmanager."""
    config = yaml.safe_load((FEDERATION / example).read_text())
    labels = config["global"].get("external_labels")
    config["global"] = dict(FAST, **({"external_labels": dict(labels, region=region)} if region else {}))
    config["rule_files"] = [str(rules)]
    del config["alerting"]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s", static_configs=[{"targets": targets}])
    return config


def short_rules(source: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / source.name
    rules.write_text(shortened_rules(source.read_text()))
    return rules


@pytest.fixture
def federation(mariadb, new_db, tmp_path):
    """{"A": heartbeats, "B": heartbeats, "global": Prometheus}: everything started here is stopped here."""
    with contextlib.ExitStack() as stack:
        regions: dict = {}
        addresses = []
        for region in ("A", "B"):
            cell, now = new_db("services"), utcnow()
            insert_services(mariadb, cell, [service(h, b, last_seen_up=now, updated_at=now) for h, b in HOSTS])
            beats = Heartbeats(mariadb, cell, dead=set())
            beats.start()
            stack.callback(beats.stop)
            exporter, url = start_exporter(
                [
                    "--database-connection",
                    mariadb.url(cell),
                    "--service_down_time",
                    str(DOWN_TIME),
                    "--report_interval",
                    "1",
                    "serve",
                ],
                tmp_path / f"exporter-{region}.log",
            )
            stack.callback(exporter.stop)
            directory = tmp_path / f"prometheus-{region}"
            config = adapted(
                "region.yml",
                short_rules(PROMETHEUS_DIR / "rules.yml", directory),
                [url.removeprefix("http://").removesuffix("/metrics")],
                region,
            )
            server = Prometheus(directory, config=config)
            stack.callback(server.stop)
            regions[region] = beats
            addresses.append(server.url.removeprefix("http://"))
        directory = tmp_path / "prometheus-global"
        config = adapted("global.yml", short_rules(FEDERATION / "global-rules.yml", directory), addresses)
        regions["global"] = Prometheus(directory, config=config)
        stack.callback(regions["global"].stop)
        yield regions
        for region in ("A", "B"):
            assert regions[region].is_alive() and regions[region].error is None, regions[region].error


def by_region(result: list[dict]) -> dict[str, int]:
    return dict(collections.Counter(series["metric"].get("region", "") for series in result))


@pytest.mark.e2e
def test_a_service_down_in_region_b_fires_on_the_global_prometheus_with_region_b_only(federation):
    world = federation["global"]
    wait_for(
        "both regions' services on the global Prometheus, all up",
        lambda: by_region(world.query("service_up == 1")) == {"A": 3, "B": 3},
        timeout=60,
    )
    wait_for(
        "both regions' recording rules on the global Prometheus",
        lambda: by_region(world.query("cell_zone_binary:service_up:count")).keys() == {"A", "B"},
        timeout=60,
    )
    assert world.alerts("NovaServiceDown") == []

    federation["B"].stopped.add(STOPPED)
    seen: list[dict] = []

    def firing():
        alerts = world.alerts("NovaServiceDown")
        seen.extend(alerts)
        return [a for a in alerts if a["state"] == "firing"]

    (alert,) = wait_for(f"NovaServiceDown of {STOPPED} in region B to fire", firing, timeout=60, every=0.2)
    assert {(a["labels"]["region"], a["labels"]["host"]) for a in seen} == {("B", STOPPED)}, seen
    assert "pending" in [a["state"] for a in seen]
    labels = dict(alert["labels"])
    assert labels.pop("project", "nova") == "nova"  # the label the series may carry
    assert labels == {
        "alertname": "NovaServiceDown",
        "severity": "warning",
        "region": "B",  # cell "" is no label
        "binary": "nova-compute",
        "host": STOPPED,
        "zone": "nova",
        "job": JOB,
        "instance": labels["instance"],
    }
    assert alert["annotations"]["summary"] == 'nova-compute on cmp-1 is down (region B, zone nova, cell "")'
    # The same host name in region A is a series of its own, and up.
    assert {s["metric"]["region"]: s["value"][1] for s in world.query(f'service_up{{host="{STOPPED}"}}')} == {
        "A": "1",
        "B": "0",
    }
    assert world.alerts("RegionFederationDown") == []
