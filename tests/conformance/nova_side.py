"""Asks real Nova (nova_judge.py in the Nova venv) for its verdicts, one long-lived process for many clouds."""

from __future__ import annotations

import datetime
import json
import pathlib
import urllib.request

from judge_process import JudgeProcess
from verdicts import Verdict, naive_iso, zones

JUDGE = pathlib.Path(__file__).with_name("nova_judge.py")
ANSWER_TIMEOUT = 120  # seconds; Nova's own limit per cell is 60
MICROVERSION = "2.11"  # the first to show forced_down


class NovaJudge(JudgeProcess):
    def __init__(self, nova_python: pathlib.Path, stderr_path: pathlib.Path):
        super().__init__("Nova", nova_python, JUDGE, stderr_path, timeout=ANSWER_TIMEOUT)

    def ask(self, conf: pathlib.Path, now: datetime.datetime) -> dict:
        """Nova's raw answer: {"cells": [{"uuid", "name", "error", "services": [...]}]}."""
        return self._request({"config": str(conf), "now": now.isoformat()})

    def serve(self, conf: pathlib.Path, now: datetime.datetime) -> str:
        """The base URL of Nova's compute API for this nova.conf, frozen at `now` until the next request."""
        return self._request({"config": str(conf), "now": now.isoformat(), "serve": True})["url"]


def verdicts(answer: dict) -> list[Verdict]:
    """Nova's rows as Verdicts; a cell or a row Nova failed on is an error here (see the crash tests)."""
    out = []
    for cell in answer["cells"]:
        assert cell["error"] is None, f"Nova failed on cell {cell['name']}: {cell['error']}"
        for s in cell["services"]:
            assert s["error"] is None, f"Nova failed on {cell['name']} {s['binary']} {s['host']}: {s['error']}"
            out.append(
                Verdict(
                    cell["name"],
                    s["binary"],
                    s["host"],
                    s["state"],
                    s["status"],
                    s["forced_down"],
                    zones(s["zone"]),
                    s["disabled_reason"],
                    s["updated_at"],
                )
            )
    return out


def cell_answer(answer: dict, name: str) -> dict:
    return next(c for c in answer["cells"] if c["name"] == name)


def os_services(base_url: str) -> list[Verdict]:
    """GET /os-services of Nova's real API, as an operator's client sends it (no cell in the answer)."""
    request = urllib.request.Request(
        f"{base_url}/os-services",
        headers={"OpenStack-API-Version": f"compute {MICROVERSION}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT) as response:
        assert response.headers["OpenStack-API-Version"] == f"compute {MICROVERSION}"
        services = json.load(response)["services"]
    return [
        Verdict(
            None,
            s["binary"],
            s["host"],
            s["state"],
            s["status"],
            s["forced_down"],
            zones(s["zone"]),
            s["disabled_reason"],
            naive_iso(s["updated_at"]),
        )
        for s in services
    ]
