"""Nova 34.0.0 itself says which services are up: run by the Nova venv's python, never by the exporter's.

A long-lived helper so that Nova is imported once for many clouds. It reads one JSON request per
line on stdin, {"config": "<nova.conf>", "now": "<ISO 8601 naive UTC, with microseconds>"}, and
answers one JSON line on stdout:

    {"cells": [{"uuid": ..., "name": ..., "error": null or "<exception>",
                "services": [{"binary", "host", "state", "status", "forced_down", "zone",
                              "disabled_reason", "updated_at", "error"}]}]}

Each request reloads that nova.conf, then asks Nova the way GET /os-services does
(nova/api/openstack/compute/services.py, _get_services and _get_service_detail): every cell mapping
in parallel through nova.context.scatter_gather_all_cells with ServiceList.get_all(set_zones=True),
the API binaries dropped, and servicegroup.API().service_is_up judged at `now`
(oslo_utils.timeutils.set_time_override). A cell Nova fails on is reported with its error instead of
rows; a row whose verdict raises is reported with the error (the API would answer 500).

An exception while answering is sent back as {"failed": "<traceback>"}.

With "serve": true in the request, it answers {"url": ...} instead: Nova's real compute API
(os-services-paste.ini beside this file), rebuilt for that nova.conf, served on 127.0.0.1 and frozen
at `now` until the next request.

This file must not import the exporter: it is the independent side of the comparison.
"""

from __future__ import annotations

import datetime
import pathlib
import sys
import threading
import warnings
import wsgiref.simple_server

warnings.simplefilter("ignore")

import judge_loop  # noqa: E402
import nova.conf  # noqa: E402
import paste.deploy  # noqa: E402
import webob.dec  # noqa: E402
from nova import config as nova_config  # noqa: E402
from nova import context as nova_context  # noqa: E402
from nova import (
    objects,  # noqa: E402
    servicegroup,  # noqa: E402
)
from nova.api import wsgi  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

CONF = nova.conf.CONF
API_BINARIES = ("nova-osapi_compute", "nova-metadata")  # nova/api/openstack/compute/services.py
PASTE = pathlib.Path(__file__).with_name("os-services-paste.ini")


def load_config(path: str, first: bool) -> None:
    # NOTE: reset() drops the service_down_time override servicegroup.API() set for the previous
    # cloud; a plain re-parse would keep it.
    CONF.reset()
    # nova-api's own start-up (nova/api/openstack/wsgi_app.py). The databases and the fake://
    # transport are the same for every cloud, and oslo.db's facades may be configured only once.
    nova_config.parse_args(["nova-api", "--config-file", path], configure_db=first, init_rpc=first)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def service_detail(svc, group: servicegroup.API) -> dict:
    detail = {
        "binary": svc["binary"],
        "host": svc["host"],
        "zone": svc["availability_zone"],
        "status": "disabled" if svc["disabled"] else "enabled",
        "forced_down": svc["forced_down"],
        "disabled_reason": svc["disabled_reason"],
        "error": None,
    }
    updated = group.get_updated_time(svc)
    detail["updated_at"] = None if updated is None else updated.replace(tzinfo=None).isoformat()
    try:
        detail["state"] = "up" if group.service_is_up(svc) else "down"
    except Exception as exc:  # e.g. both heartbeats NULL: GET /os-services answers 500
        detail["state"] = None
        detail["error"] = describe(exc)
    return detail


def judge(now: datetime.datetime) -> dict:
    group = servicegroup.API()  # after the config: it applies the down-time override
    ctxt = nova_context.get_admin_context()
    nova_context.load_cells()
    names = {cell.uuid: cell.name for cell in nova_context.CELLS}
    timeutils.set_time_override(now)
    try:
        results = nova_context.scatter_gather_all_cells(ctxt, objects.ServiceList.get_all, None, set_zones=True)
        cells = []
        for uuid, result in results.items():
            cell = {"uuid": uuid, "name": names[uuid], "error": None, "services": []}
            if nova_context.is_cell_failure_sentinel(result):
                cell["error"] = "no answer" if result is nova_context.did_not_respond_sentinel else describe(result)
            else:
                cell["services"] = [service_detail(svc, group) for svc in result if svc["binary"] not in API_BINARIES]
            cells.append(cell)
    finally:
        timeutils.clear_time_override()
    return {"cells": cells}


class AdminContext(wsgi.Middleware):
    """What Keystone's filters would leave behind for a cloud administrator."""

    @webob.dec.wsgify(RequestClass=wsgi.Request)
    def __call__(self, req):
        req.environ["nova.context"] = nova_context.RequestContext(
            user_id="conformance", project_id="conformance", roles=["admin", "member", "reader"], is_admin=True
        )
        return self.application


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ComputeApi:
    """Nova's compute API on 127.0.0.1. The app is rebuilt for every cloud: its ServiceController
    reads the down time once, when it is made."""

    def __init__(self):
        self.app = None
        self.server = wsgiref.simple_server.make_server("127.0.0.1", 0, self, handler_class=QuietHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    def serve(self) -> str:
        self.app = paste.deploy.loadapp(f"config:{PASTE}", name="osapi_compute")
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v2.1"


class Judge:
    def __init__(self):
        objects.register_all()
        self.api = None
        self.first = True

    def __call__(self, request: dict) -> dict:
        timeutils.clear_time_override()
        load_config(request["config"], self.first)
        self.first = False
        now = datetime.datetime.fromisoformat(request["now"])
        if request.get("serve"):
            self.api = self.api or ComputeApi()
            timeutils.set_time_override(now)  # kept while the client asks the API
            return {"url": self.api.serve()}
        return judge(now)


def main() -> int:
    return judge_loop.answer_lines(Judge)


if __name__ == "__main__":
    sys.exit(main())
