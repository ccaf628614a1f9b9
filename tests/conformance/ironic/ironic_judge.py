"""Ironic 39.0.0 itself says which conductors are alive: run by the oracle venv's python, never by the
exporter's.

A long-lived process so that Ironic is imported once for many clouds. It reads one JSON request per
line on stdin, {"database": "<URL>", "config": "<ironic.conf>", "now": "<ISO 8601 naive UTC>"}, and
answers one JSON line on stdout:

    {"clock": Ironic's utcnow() during the answer, "microversion": the API's answer header,
     "status": HTTP status of GET /v1/conductors?detail=True, "error": its faultstring or null,
     "conductors": its conductors (every page), "objects": [{"id", "hostname", "online"}] or null,
     "objects_error": null or "<exception>"}

The answer is the real ironic-api application (ironic/api/wsgi.py, initialize_wsgi_app: Ironic's own
start-up with that ironic.conf, auth_strategy = noauth), called in process with webob, at the
release's newest microversion; `alive` comes from its ConductorsController
(ironic/api/controllers/v1/conductor.py, convert_with_links). The API does not show `online`: it is
read from the Conductor objects the controller lists (ironic/objects/conductor.py, Conductor.list).
The clock is frozen at `now` with freezegun: timeutils.is_older_than compares
oslo_utils.timeutils.utcnow(), which is datetime.datetime.now(datetime.UTC).

Every request reloads that ironic.conf (heartbeat_timeout is read on each API call); the database
must stay the one of the first request, since oslo.db's engine is made once per process.

An exception while answering is sent back as {"failed": "<traceback>"} (judge_loop.py).

This file must not import the exporter: it is the independent side of the comparison.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import sys
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # judge_loop

import freezegun  # noqa: E402
import judge_loop  # noqa: E402
import webob  # noqa: E402
from ironic import objects  # noqa: E402
from ironic.api import wsgi  # noqa: E402
from ironic.api.controllers.v1 import versions  # noqa: E402
from ironic.common import config as ironic_config  # noqa: E402
from ironic.common import context as ironic_context  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

CONF = cfg.CONF
MICROVERSION = f"{versions.BASE_VERSION}.{versions.MINOR_MAX_VERSION}"  # what a current client negotiates
PATH = "/v1/conductors?detail=True"


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def get(app, url: str) -> dict:
    request = webob.Request.blank(
        url, headers={"X-OpenStack-Ironic-API-Version": MICROVERSION, "Accept": "application/json"}
    )
    response = request.get_response(app)
    answer = {
        "status": response.status_code,
        "error": None,
        "body": response.json,
        "microversion": response.headers.get("X-OpenStack-Ironic-API-Version"),
    }
    if response.status_code != 200:
        # ironic/api/method.py, format_exception: the fault is JSON inside the JSON.
        answer["error"] = json.loads(answer["body"]["error_message"])["faultstring"]
    return answer


def listing(app) -> dict:
    """GET /v1/conductors?detail=True as a client pages through it ([api] max_limit per page)."""
    conductors, url = [], PATH
    while url:
        page = get(app, url)
        if page["status"] != 200:
            return {
                "status": page["status"],
                "error": page["error"],
                "conductors": None,
                "microversion": page["microversion"],
            }
        conductors += page["body"]["conductors"]
        url = page["body"].get("next")
    return {"status": 200, "error": None, "conductors": conductors, "microversion": page["microversion"]}


def online_flags() -> dict:
    try:
        listed = objects.Conductor.list(ironic_context.get_admin_context())
    except Exception as exc:  # e.g. online NULL: the object refuses None
        return {"objects": None, "objects_error": describe(exc)}
    return {
        "objects": [{"id": c.id, "hostname": c.hostname, "online": c.online} for c in listed],
        "objects_error": None,
    }


def judge(app, now: datetime.datetime) -> dict:
    with freezegun.freeze_time(now):
        answer = {"clock": timeutils.utcnow().isoformat()}
        answer.update(listing(app))
        answer.update(online_flags())
    return answer


def main() -> int:
    state = {"app": None, "database": None}

    def answer(request: dict) -> dict:
        argv = ["ironic-api", "--config-file", request["config"]]
        if state["app"] is None:
            state["app"] = wsgi.initialize_wsgi_app(argv)
            state["database"] = CONF.database.connection
        else:
            ironic_config.parse_args(argv)  # what initialize_wsgi_app parses the files with
        if not request["database"] == CONF.database.connection == state["database"]:
            raise ValueError(
                f"this process reads {state['database']}; asked for {request['database']} with "
                f"[database] connection = {CONF.database.connection}"
            )
        return judge(state["app"], datetime.datetime.fromisoformat(request["now"]))

    return judge_loop.answer_lines(lambda: answer)


if __name__ == "__main__":
    sys.exit(main())
