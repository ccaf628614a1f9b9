"""Asks real Cinder (cinder_judge.py in the oracle venv) for its verdicts, one long-lived process for
many clouds."""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass
from typing import NamedTuple

from judge_process import JudgeProcess

JUDGE = pathlib.Path(__file__).with_name("cinder_judge.py")


@dataclass(frozen=True)
class CinderRow:
    """One row of Cinder's GET /os-services, with the database row it was made from."""

    id: int
    uuid: str | None
    binary: str
    host: str
    state: str  # up | down: ServiceController.index
    status: str  # enabled | disabled
    zone: str | None
    disabled_reason: str | None
    cluster: str | None
    is_up: bool  # Service.is_up: cinder-manage service list and the scheduler
    raw: dict  # the API's row as sent

    @property
    def key(self) -> tuple:
        return (self.binary, self.host)


class Answer(NamedTuple):
    rows: list[CinderRow]
    service_down_time: int  # as cinder-api loaded it from cinder.conf


class CinderJudge(JudgeProcess):
    def __init__(self, oracle_python: pathlib.Path, workdir: pathlib.Path):
        super().__init__("Cinder", oracle_python, JUDGE, workdir / "stderr.log", args=(str(workdir),))

    def ask(self, conf: pathlib.Path, now: datetime.datetime) -> Answer:
        answer = self._request({"config": str(conf), "now": now.isoformat()})
        return Answer(
            [
                CinderRow(
                    s["id"],
                    s["uuid"],
                    s["binary"],
                    s["host"],
                    s["state"],
                    s["status"],
                    s["zone"],
                    s["disabled_reason"],
                    s["cluster"],
                    s["is_up"],
                    s,
                )
                for s in answer["services"]
            ],
            answer["service_down_time"],
        )
