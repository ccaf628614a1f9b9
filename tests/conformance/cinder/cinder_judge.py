"""Cinder 29.0.0 itself says which volume services are up: run by the oracle venv's python, never by
the exporter's.

A long-lived process, so that Cinder is imported and its API built once for many clouds. Started as
`python cinder_judge.py WORKDIR`, it reads one JSON request per line on stdin,
{"config": "<cinder.conf>", "now": "<ISO 8601 naive UTC, with microseconds>"}, and answers one JSON
line on stdout:

    {"services": [{<the row of GET /v3/{project}/os-services, as Cinder's API sent it>,
                   "id", "uuid": the database row the API judged, "is_up": Service.is_up}],
     "service_down_time": <the down time cinder-api runs with>}

Each request reloads that cinder.conf as cinder-api does (cinder/wsgi/wsgi.py,
initialize_application), freezes the clock at `now` with freezegun, and asks Cinder's real API,
built from Cinder's own api-paste.ini with its noauth pipeline and served on 127.0.0.1, for
GET /v3/{project}/os-services at microversion 3.7 (the first to show `cluster`; from 3.49 on the
listing asks a scheduler over RPC for backend_state, and none runs here). The rule is
ServiceController.index's own (cinder/api/v3/services.py).

The API's rows carry no id: the ServiceList that index() read (ServiceList.get_all, recorded as it
returns) gives each row its id and uuid, in the order index() appended them. `is_up` is the other
verdict, cinder/objects/service.py Service.is_up (cinder-manage service list and the scheduler),
asked of the same objects at the same frozen instant.

An exception while answering is sent back as {"failed": "<traceback>"}.

This file must not import the exporter: it is the independent side of the comparison.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import sys
import threading
import urllib.error
import urllib.request
import warnings
import wsgiref.simple_server

warnings.simplefilter("ignore")

import freezegun  # noqa: E402
from cinder import (
    objects,  # noqa: E402
    rpc,  # noqa: E402
    version,  # noqa: E402
)
from cinder.common import config as cinder_config  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_log import log as logging  # noqa: E402
from oslo_service import wsgi as service_wsgi  # noqa: E402

sys.path.append(str(pathlib.Path(__file__).parent.parent))  # judge_loop; after the venv, never before it
import judge_loop  # noqa: E402

CONF = cfg.CONF
MICROVERSION = "3.7"
# The default project_id_regex ([0-9a-f-]+) routes only hexadecimal project ids.
PROJECT = "c1d0e7c1d0e7c1d0e7c1d0e7c1d0e7c1"
PASTE = pathlib.Path(sys.prefix) / "etc" / "cinder" / "api-paste.ini"  # installed by the cinder wheel
TIMEOUT = 120


def overlay(workdir: pathlib.Path) -> pathlib.Path:
    """What this process adds to each cloud's cinder.conf, read after it: the noauth pipeline, the
    fake RPC transport and Cinder's own paste file. It never sets a judged option."""
    path = workdir / "judge-overlay.conf"
    path.write_text(
        f"[DEFAULT]\nauth_strategy = noauth\ntransport_url = fake://\napi_paste_config = {PASTE}\n"
        f"[oslo_concurrency]\nlock_path = {workdir}\n"
    )
    return path


def load_config(cinder_conf: str, extra: pathlib.Path) -> None:
    CONF.reset()
    CONF(
        ["--config-file", cinder_conf, "--config-file", str(extra)], project="cinder", version=version.version_string()
    )
    cinder_config.set_middleware_defaults()


class Recorder:
    """Keeps the ServiceList that ServiceController.index read, unchanged."""

    def __init__(self):
        self.read: list = []
        real = objects.ServiceList.get_all.__func__

        def get_all(cls, context, filters=None):
            services = real(cls, context, filters)
            self.read.append(services)
            return services

        objects.ServiceList.get_all = classmethod(get_all)


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


class VolumeApi:
    """cinder-api's osapi_volume app on 127.0.0.1. Built once: its ServiceController reads
    CONF.service_down_time at every request, and its RPC clients cache the services' minimum
    versions for the life of the process anyway (cinder/rpc.py, LAST_RPC_VERSIONS)."""

    def __init__(self):
        rpc.init(CONF)
        app = service_wsgi.Loader(CONF).load_app(name="osapi_volume")
        self.server = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.connection = CONF.database.connection

    def os_services(self) -> list[dict]:
        host, port = self.server.server_address[:2]
        request = urllib.request.Request(
            f"http://{host}:{port}/v3/{PROJECT}/os-services",
            headers={
                "X-Auth-Token": f"{PROJECT}:{PROJECT}",
                "Accept": "application/json",
                "OpenStack-API-Version": f"volume {MICROVERSION}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                assert response.headers["OpenStack-API-Version"] == f"volume {MICROVERSION}", dict(response.headers)
                return json.load(response)["services"]
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"GET /os-services answered {exc.code}: {exc.read()[:2000]!r}") from None


def judge(api: VolumeApi, recorder: Recorder, now: datetime.datetime) -> dict:
    if CONF.database.connection != api.connection:
        raise ValueError("every cloud must use the database the API was built on (oslo.db starts once)")
    recorder.read.clear()
    with freezegun.freeze_time(now):
        rows = api.os_services()
        assert len(recorder.read) == 1, f"index() read {len(recorder.read)} service lists"
        read = recorder.read[0]
        is_up = [bool(svc.is_up) for svc in read]
    assert len(rows) == len(read), (len(rows), len(read))
    services = []
    for row, svc, up in zip(rows, read, is_up, strict=True):
        assert (row["binary"], row["host"]) == (svc.binary, svc.host), (row, svc)
        uuid = svc.uuid if svc.obj_attr_is_set("uuid") else None
        services.append({**row, "id": svc.id, "uuid": uuid, "is_up": up})
    return {"services": services, "service_down_time": CONF.service_down_time}


class Judge:
    def __init__(self):
        self.extra = overlay(pathlib.Path(sys.argv[1]))
        objects.register_all()
        self.recorder = Recorder()
        self.api = None

    def __call__(self, request: dict) -> dict:
        load_config(request["config"], self.extra)
        if self.api is None:
            logging.setup(CONF, "cinder")
            self.api = VolumeApi()
        return judge(self.api, self.recorder, datetime.datetime.fromisoformat(request["now"]))


def main() -> int:
    return judge_loop.answer_lines(Judge)


if __name__ == "__main__":
    sys.exit(main())
