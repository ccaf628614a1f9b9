"""Neutron 29.0.0 itself says which agents are alive: run by the oracle venv's python, never by the exporter's.

A long-lived process so that Neutron is imported once for many clouds. It reads one JSON request per
line on stdin, {"config_dir": "<dir holding neutron.conf and plugins/ml2/ml2_conf.ini>",
"now": "<ISO 8601 naive UTC>"}, and answers one JSON line on stdout:

    {"agents": [<GET /v2.0/agents items: _make_agent_dict's keys, times as naive ISO 8601>],
     "utcnow": <oslo_utils.timeutils.utcnow() while judging>, "agent_down_time": <as parsed>,
     "mechanism_drivers": <[ml2] mechanism_drivers as parsed>}

Each request configures Neutron as neutron-api starts (neutron/wsgi/api.py -> neutron/server/__init__.py,
_init_configuration, with OS_NEUTRON_CONFIG_DIR naming the cloud's directory: neutron.conf then
plugins/ml2/ml2_conf.ini), then lists the agents as GET /v2.0/agents does: AgentDbMixin.get_agents
(neutron/db/agents_db.py) on an admin context, through Neutron's Agent object and its database code;
`alive` is _make_agent_dict's own is_agent_down (neutron/agent/common/utils.py). The clock is frozen at
`now` with freezegun: is_older_than reads oslo_utils.timeutils.utcnow(), which reads
datetime.datetime.now(datetime.UTC) (the override hook of old is deprecated).

An exception while answering is sent back as {"failed": "<traceback>"}.

This file must not import the exporter: it is the independent side of the comparison.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import traceback
import warnings

warnings.simplefilter("ignore")

import freezegun  # noqa: E402
from neutron import server  # noqa: E402
from neutron.conf.plugins.ml2 import config as ml2_config  # noqa: E402
from neutron.db import agents_db  # noqa: E402
from neutron_lib import context as n_context  # noqa: E402
from neutron_lib import rpc as n_rpc  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_utils import timeutils  # noqa: E402

PROG = "neutron-api"


def load_config(config_dir: str) -> None:
    """neutron-api's own start-up for this cloud's configuration directory."""
    if n_rpc.TRANSPORT is not None:
        n_rpc.cleanup()  # the previous cloud's transports; init makes new ones
    os.environ["OS_NEUTRON_CONFIG_DIR"] = config_dir
    os.environ.pop("OS_NEUTRON_CONFIG_FILES", None)  # the default pair: neutron.conf, ml2_conf.ini
    server._init_configuration(prog=PROG)


def as_json(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def judge(now: datetime.datetime) -> dict:
    plugin = agents_db.AgentDbMixin()
    context = n_context.get_admin_context()
    with freezegun.freeze_time(now):
        agents = plugin.get_agents(context)
        clock = timeutils.utcnow()
    return {
        "agents": agents,
        "utcnow": clock,
        "agent_down_time": cfg.CONF.agent_down_time,
        "mechanism_drivers": list(cfg.CONF.ml2.mechanism_drivers),
    }


def main() -> int:
    # Only answers go to the real stdout; whatever Neutron prints or logs lands on stderr.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.argv = [PROG]  # _init_configuration parses sys.argv[1:]: no options beyond the files
    ml2_config.register_ml2_plugin_opts()  # as the ML2 plugin module does when neutron-api loads it
    for line in sys.stdin:
        request = json.loads(line)
        try:
            load_config(request["config_dir"])
            answer = judge(datetime.datetime.fromisoformat(request["now"]))
        except Exception:  # one bad request fails one test, not every later one
            answer = {"failed": traceback.format_exc()}
        answers.write(json.dumps(answer, default=as_json) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
