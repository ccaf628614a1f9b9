"""Nova 34.0.0 itself writes heartbeats into memcached: run by the Nova venv's python, never by the exporter's.

A long-lived helper. It reads one JSON request per line on stdin,
{"config": "<nova.conf>", "beats": [{"topic": ..., "host": ..., "skew": <seconds>}, ...]}, loads that
nova.conf as a Nova service would (nova.config.parse_args), makes servicegroup.API() (which applies the
down-time override and builds nova/servicegroup/drivers/mc.py's MemcachedDriver from [cache]) and calls
MemcachedDriver._report_state for each beat, as a service's report timer does. It answers one JSON line,
{"written": ["<the value stored, naive UTC ISO 8601>", ...]}, or {"failed": "<traceback>"}.

`skew` is the writing host's clock error: both clocks Nova's write reads (timeutils.utcnow() for the value,
time.time() for dogpile's creation time, by which readers expire it) are that far off.

This file must not import the exporter: it is the independent side of the comparison.
"""

from __future__ import annotations

import datetime
import sys
import time
import warnings
from unittest import mock

warnings.simplefilter("ignore")

import judge_loop  # noqa: E402
import nova.conf  # noqa: E402
from nova import config as nova_config  # noqa: E402
from nova import servicegroup  # noqa: E402
from nova.servicegroup.drivers.mc import MemcachedDriver  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

CONF = nova.conf.CONF


class Service:
    """What MemcachedDriver._report_state reads of a nova.service.Service."""

    def __init__(self, topic, host):
        self.service_ref = {"topic": topic, "host": host}
        self.model_disconnected = False


def write(config: str, beats: list[dict]) -> list[str]:
    CONF.reset()  # drops the down-time override of the previous request's servicegroup.API()
    nova_config.parse_args(["nova-compute", "--config-file", config], configure_db=False, init_rpc=False)
    driver = servicegroup.API()._driver
    if not isinstance(driver, MemcachedDriver):
        raise RuntimeError(f"{config} does not select the mc driver: {type(driver).__name__}")
    real_time = time.time
    written = []
    for beat in beats:
        skew = beat.get("skew", 0.0)
        moment = timeutils.utcnow() + datetime.timedelta(seconds=skew)
        service = Service(beat["topic"], beat["host"])
        timeutils.set_time_override(moment)
        try:
            with mock.patch("time.time", lambda skew=skew: real_time() + skew):
                driver._report_state(service)
        finally:
            timeutils.clear_time_override()
        if service.model_disconnected:  # _report_state logs and swallows a failed write
            raise RuntimeError(f"Nova could not write {beat}")
        written.append(moment.isoformat())
    return written


def main() -> int:
    return judge_loop.answer_lines(lambda: lambda request: {"written": write(request["config"], request["beats"])})


if __name__ == "__main__":
    sys.exit(main())
