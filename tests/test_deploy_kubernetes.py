"""deploy/kubernetes: every built-in manifest valid against Kubernetes' own schemas (offline, shipped by
kubernetes-validate), the custom resources checked for structure, the pieces consistent with each
other and with the exporter, and the PrometheusRule identical to deploy/prometheus/rules.yml."""

from __future__ import annotations

import copy
import importlib.util
import pathlib
import re

import pytest
import yaml

try:
    import kubernetes_validate
except ImportError:  # a test-only tool: requirements-test.txt
    pytest.fail("kubernetes-validate is missing: pip install -r requirements-test.txt", pytrace=False)

from helpers import get, nova_settings, served

from openstack_service_exporter import __version__, config, http
from openstack_service_exporter.sources import SOURCES

ROOT = pathlib.Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
# The oldest Kubernetes the manifests are meant for, and the newest the schemas know.
VERSIONS = ["1.25", kubernetes_validate.latest_version()]
CUSTOM = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
NOT_APPLIED = {"kustomization.yaml"}  # read by kubectl -k itself, not sent to the cluster


def manifest_files() -> list[pathlib.Path]:
    return sorted(p for p in KUBE.glob("*.yaml") if p.name not in NOT_APPLIED)


def resources() -> list[dict]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(kind: str) -> dict:
    (found,) = [r for r in resources() if r["kind"] == kind]
    return found


def validate(resource: dict, version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)  # strict: no unknown field either


def standard_resources(path: pathlib.Path) -> list[dict]:
    """The file's resources that Kubernetes has a schema for (custom resources are checked one by one below)."""
    return [r for r in yaml.safe_load_all(path.read_text()) if r and (r["apiVersion"], r["kind"]) not in CUSTOM]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", [p for p in manifest_files() if standard_resources(p)], ids=lambda p: p.name)
def test_manifest_is_valid(path, version):
    for resource in standard_resources(path):
        validate(resource, version)


def test_every_resource_is_validated_or_a_known_custom_one():
    kinds = {(r["apiVersion"], r["kind"]) for r in resources()}
    assert kinds & CUSTOM == CUSTOM  # the custom ones are there and get their own tests


def test_validation_rejects_a_misspelt_field():
    deployment = copy.deepcopy(one("Deployment"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, VERSIONS[-1])


def test_every_manifest_is_applied_by_the_kustomization():
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    kinds = sorted(r["kind"] for r in resources())
    assert kinds == ["Deployment", "PodDisruptionBudget", "PrometheusRule", "Secret", "Service", "ServiceMonitor"]


# -- the Deployment and what it must agree with ------------------------------------------------------


def pod_spec() -> dict:
    return one("Deployment")["spec"]["template"]["spec"]


def container() -> dict:
    (only,) = pod_spec()["containers"]
    return only


def test_pods_are_locked_down():
    pod, box = pod_spec()["securityContext"], container()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert box["readOnlyRootFilesystem"] is True
    assert box["allowPrivilegeEscalation"] is False
    assert box["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec()["automountServiceAccountToken"] is False


def test_runs_as_the_images_own_user():
    user = re.search(r"^USER\s+(\d+)(?::(\d+))?", (ROOT / "deploy/container/Dockerfile").read_text(), re.M)
    pod = pod_spec()["securityContext"]
    assert (str(pod["runAsUser"]), str(pod["runAsGroup"])) == (user.group(1), user.group(2) or user.group(1))


def test_two_replicas_with_probes_and_resources():
    deployment = one("Deployment")
    assert deployment["spec"]["replicas"] == 2
    (port,) = container()["ports"]
    assert port["containerPort"] == config.DEFAULT_PORT
    for probe in ("readinessProbe", "livenessProbe"):
        assert container()[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    resources_ = container()["resources"]
    assert resources_["requests"]["memory"] and resources_["requests"]["cpu"] and resources_["limits"]["memory"]
    assert container()["image"].endswith(f":{__version__}"), "tag the image with the package's version"


def test_the_probe_path_answers_while_the_database_is_down():
    """/healthz says the process serves; a database outage is the metrics' business, not a restart's."""
    unreachable = "mysql+pymysql://nova:x@127.0.0.1:1/nova"
    with served(nova_settings(database_connection=unreachable)) as (base, _):
        status, _, body = get(base + "/healthz", timeout=10)
    assert (status, body) == (200, b"OK\n")


def mounted_nova_conf(tmp_path: pathlib.Path) -> tuple[list[str], pathlib.Path]:
    """The container's args and the Secret's nova.conf written where the args expect it (in tmp_path)."""
    (mount,) = container()["volumeMounts"]
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == mount["name"]]
    secret = one("Secret")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert mount["readOnly"] is True
    (item,) = volume["secret"]["items"]
    in_container = f"{mount['mountPath']}/{item['path']}"
    local = tmp_path / item["path"]
    local.write_text(secret["stringData"][item["key"]])
    args = [str(local) if a == in_container else a for a in container()["args"]]
    assert str(local) in args, "the args do not read the mounted nova.conf"
    return args, local


def test_the_secrets_nova_conf_is_what_the_args_read_and_is_complete(tmp_path):
    args, _ = mounted_nova_conf(tmp_path)
    assert args[-1] == "serve"
    settings = config.load(args[:-1], SOURCES, default_config_files=[])
    (nova,) = settings.sources
    assert nova.api_database_connection and nova.database_connection
    assert settings.listen_port == container()["ports"][0]["containerPort"]
    assert (nova.service_down_time, nova.report_interval) == (60, 10)


def test_the_secret_file_is_readable_by_the_pods_group_only():
    pod = pod_spec()
    (volume,) = pod["volumes"]
    assert (
        volume["secret"]["defaultMode"] == 0o440
        and pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    )


# -- Service, PodDisruptionBudget, ServiceMonitor ----------------------------------------------------


def pod_labels() -> dict:
    return one("Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_service_and_budget_select_the_pods():
    service = one("Service")
    assert selects(service["spec"]["selector"], pod_labels())
    assert selects(one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], pod_labels())
    assert selects(one("Deployment")["spec"]["selector"]["matchLabels"], pod_labels())
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container()["ports"][0]["name"] and port["port"] == config.DEFAULT_PORT


def test_the_job_label_is_the_one_the_rules_expect():
    """The Prometheus Operator names the job after the Service."""
    jobs = set(re.findall(r'job="([^"]+)"', RULES.read_text()))
    assert jobs == {one("Service")["metadata"]["name"]}


def test_service_monitor_structure():
    monitor = one("ServiceMonitor")
    service = one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"]
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    interval, timeout = (int(endpoint[k].removesuffix("s")) for k in ("interval", "scrapeTimeout"))
    assert timeout < interval
    defaults = config.Settings()
    budget = http.scrape_budget({http.SCRAPE_TIMEOUT_HEADER: str(timeout)}, defaults)
    assert budget == 2 * defaults.query_timeout and budget < timeout


# -- PrometheusRule: generated from rules.yml --------------------------------------------------------


def generator():
    spec = importlib.util.spec_from_file_location("generate_prometheusrule", KUBE / "generate_prometheusrule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheus_rule_is_generated_from_rules_yml():
    assert (KUBE / "prometheusrule.yaml").read_text() == generator().render(RULES.read_text()), (
        "stale: run python3 deploy/kubernetes/generate_prometheusrule.py"
    )


def test_prometheus_rule_structure():
    rule = one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["metadata"]["name"]
    groups = rule["spec"]["groups"]
    assert groups == yaml.safe_load(RULES.read_text())["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    for group in groups:
        assert group["rules"], group["name"]
        for r in group["rules"]:
            assert isinstance(r["expr"], str) and r["expr"].strip()
            assert ("alert" in r) != ("record" in r), r


def test_generator_check_mode_tells_a_stale_file(tmp_path, monkeypatch, capsys):
    module = generator()
    assert module.main(["--check"]) == 0
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text((KUBE / "prometheusrule.yaml").read_text().replace("for: 3m", "for: 4m", 1))
    monkeypatch.setattr(module, "OUTPUT", stale)
    assert module.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert module.main([]) == 0 and module.main(["--check"]) == 0  # rewritten
