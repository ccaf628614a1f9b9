#!/usr/bin/env python3
"""deploy/prometheus/rules.yml wrapped into a PrometheusRule (Prometheus Operator), so that the rules
Kubernetes loads are exactly the ones written, reviewed and tested there.

    python3 deploy/kubernetes/generate_prometheusrule.py          # rewrites prometheusrule.yaml
    python3 deploy/kubernetes/generate_prometheusrule.py --check  # exit 1 if prometheusrule.yaml is stale

Your Prometheus selects PrometheusRules by label (ruleSelector; kube-prometheus-stack:
release: <its release>): add that label with kustomize (labels:) rather than here.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

HERE = pathlib.Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "rules.yml"
OUTPUT = HERE / "prometheusrule.yaml"
NAME = "openstack-service-exporter"
HEADER = """\
# Generated from deploy/prometheus/rules.yml by deploy/kubernetes/generate_prometheusrule.py:
# do not edit. Change rules.yml, then run:  python3 deploy/kubernetes/generate_prometheusrule.py
"""


def prometheus_rule(rules_text: str) -> dict:
    groups = yaml.safe_load(rules_text)["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": NAME,
            "labels": {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "exporter"},
        },
        "spec": {"groups": groups},
    }


WIDTH = 150  # where text wraps
FOLD_ABOVE = 130  # characters: shorter one-line text (summaries, expressions) stays on its line


class _Dumper(yaml.SafeDumper):
    """Long text as blocks, readable in review: multi-line as literal (|), long lines folded (>-)."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else ">" if len(value) > FOLD_ABOVE else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render(rules_text: str) -> str:
    body = yaml.dump(
        prometheus_rule(rules_text),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=WIDTH,
        default_flow_style=False,
    )
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only tell whether the committed file is current")
    args = parser.parse_args(argv)
    wanted = render(RULES.read_text())
    if args.check:
        if OUTPUT.read_text() != wanted:
            print(f"{OUTPUT.name} is stale: run {pathlib.Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
