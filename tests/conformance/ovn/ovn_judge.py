"""Neutron 29.0.0's own answer on OVN agents, run with the oracle venv's python (neutron cannot be
imported beside the exporter's tests).

    python ovn_judge.py < request.json > answer.json

request: [{"nb": "tcp:...", "sb": "tcp:...", "agent_down_time": int, "now": ISO 8601 UTC with µs}, ...]
answer:  one list per cloud of the agent dicts neutron-server's GET /v2.0/agents returns for OVN
(NeutronAgent.as_dict), with `alive` judged at the frozen instant.

Neutron's own connections: OvsdbNbOvnIdl / OvsdbSbOvnIdl.from_worker (the maintenance worker's
ovsdbapp IDLs, which register no event handlers), [ovn] ovn_nb_connection / ovn_sb_connection set in
its cfg.CONF. The agents come from AgentCache.populate, as a freshly started neutron-server has them,
and neither side pings (ping_all_chassis writes to OVN): both judge what is in the databases.
"""

from __future__ import annotations

import datetime
import gc
import json
import sys
import types

from freezegun import freeze_time
from neutron.conf.agent.database import agents_db
from neutron.conf.plugins.ml2.drivers.ovn import ovn_conf
from neutron.plugins.ml2.drivers.ovn.agent import neutron_agent
from neutron.plugins.ml2.drivers.ovn.mech_driver.ovsdb import impl_idl_ovn, worker
from oslo_config import cfg


def judge_cloud(nb: str, sb: str, agent_down_time: int, now: datetime.datetime) -> list[dict]:
    cfg.CONF.set_override("agent_down_time", agent_down_time)
    cfg.CONF.set_override("ovn_nb_connection", [nb], group="ovn")
    cfg.CONF.set_override("ovn_sb_connection", [sb], group="ovn")
    nb_api = impl_idl_ovn.OvsdbNbOvnIdl.from_worker(worker.MaintenanceWorker)
    sb_api = impl_idl_ovn.OvsdbSbOvnIdl.from_worker(worker.MaintenanceWorker)
    try:
        driver = types.SimpleNamespace(nb_ovn=nb_api, sb_ovn=sb_api)
        cache = neutron_agent.AgentCache(driver=driver)
        cache.populate()
        with freeze_time(now, ignore=["ovs", "ovsdbapp"]):
            answer = [agent.as_dict() for agent in cache.get_agents()]
        del cache
        gc.collect()  # AgentCache is a singleton held in a WeakValueDictionary: the next cloud starts afresh
        return answer
    finally:
        nb_api.ovsdb_connection.stop()
        sb_api.ovsdb_connection.stop()


def main() -> None:
    clouds = json.load(sys.stdin)
    agents_db.register_db_agents_opts()
    ovn_conf.register_opts()
    cfg.CONF([], project="neutron")
    answers = [
        judge_cloud(c["nb"], c["sb"], c["agent_down_time"], datetime.datetime.fromisoformat(c["now"])) for c in clouds
    ]
    json.dump(answers, sys.stdout, default=str)


if __name__ == "__main__":
    main()
