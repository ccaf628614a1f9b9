"""The demo cloud's ML2/OVN part: private northbound and southbound ovsdb-servers on unix sockets in
the demo's folder (openstack_service_exporter/ovn_servers.py), when OVN's server and schemas are
installed, with a few chassis whose agents beat as the other demo services do.

Scenario (agents judged by neutron 29.0.0's rule, openstack_service_exporter/sources/ovn.py):
  ovn-gw-01   a gateway chassis ("OVN Controller Gateway agent") in zones az1 and az2
  ovn-cmp-01  ovn-controller and its metadata agent; the controller dead in the first half of each
              period, and the metadata agent down with it
  ovn-cmp-02  ovn-controller answering one ping late (nb_cfg one behind: alive), and its metadata agent
  ovn-cmp-03  ovn-controller dead for good; its metadata agent keeps answering, and is down with it
Each beat is what a listing of the agents leaves: neutron-server's ping (NB_Global.nb_cfg + 1 and
external_ids neutron:liveness_check_at, mech_driver.py, ping_all_chassis), then each live
ovn-controller's echo (Chassis_Private nb_cfg and nb_cfg_timestamp) and each metadata agent's
(external_ids neutron:ovn-metadata-sb-cfg).
"""

from __future__ import annotations

import datetime
import logging
import pathlib
import time
import uuid as uuidlib
from typing import Any

from . import ovn_servers
from .ovn_servers import Chassis, OvnDatabases
from .sources import ovn
from .sources.ovsdb import Remote

LOG = logging.getLogger(__name__)

GATEWAY = "ovn-gw-01"
DYING = "ovn-cmp-01"  # its ovn-controller dead in the first half of each period
LAGGING = "ovn-cmp-02"
DEAD_CONTROLLER = "ovn-cmp-03"
HOSTS = (GATEWAY, DYING, LAGGING, DEAD_CONTROLLER)
WITH_METADATA = (DYING, LAGGING, DEAD_CONTROLLER)
FIRST_NB_CFG = 2


def start(directory: str) -> OvnDatabases | None:
    """The OVN databases with the scenario's chassis, or None (and one line saying why) when OVN's
    server cannot run here."""
    why = ovn_servers.missing()
    if why is not None:
        LOG.warning("demo: the OVN part of the demo is off: %s", why)
        return None
    dbs = OvnDatabases.in_folder(pathlib.Path(directory) / "ovn")
    try:
        dbs.start()
        dbs.set_nb_cfg(FIRST_NB_CFG)
        dbs.set_chassis(chassis(int(time.time() * 1000)))
    except (OSError, RuntimeError, ValueError) as exc:
        dbs.stop()
        LOG.warning("demo: the OVN part of the demo is off: its databases did not start: %s", exc)
        return None
    LOG.info(
        "demo: ML2/OVN agents in OVN's databases (unix sockets in %s): %s a gateway, the controller of %s dies "
        "and returns, %s lags one ping, %s's controller is dead and its metadata agent down with it",
        dbs.nb.base.parent,
        GATEWAY,
        DYING,
        LAGGING,
        DEAD_CONTROLLER,
    )
    return dbs


def chassis(now_ms: int) -> list[Chassis]:
    out = []
    for host in HOSTS:
        options = {ovn.CMS_OPTIONS: "enable-chassis-as-gw,availability-zones=az1:az2"} if host == GATEWAY else {}
        ids = {ovn.METADATA_ID: str(uuidlib.uuid4()), ovn.METADATA_CFG: str(FIRST_NB_CFG)}
        dead = host == DEAD_CONTROLLER
        out.append(
            Chassis(
                str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, host)),  # ovn-controller's system-id
                host,
                FIRST_NB_CFG - 2 if dead else FIRST_NB_CFG,
                now_ms - 300_000 if dead else now_ms,
                ids if host in WITH_METADATA else {},
                options,
            )
        )
    return out


def remotes(dbs: OvnDatabases) -> ovn.OvnConfig:
    """How the demo's Neutron reaches them (as [ovn] ovn_nb_connection and ovn_sb_connection would say)."""
    return ovn.OvnConfig(Remote((dbs.nb.unix,)), Remote((dbs.sb.unix,)))


def beat(dbs: OvnDatabases, nb_cfg: int, dead: set[str]) -> None:
    """One ping by neutron-server, to `nb_cfg`, and the echoes of the agents not in `dead`."""
    now = datetime.datetime.now(datetime.UTC)
    dbs.set_nb_cfg(nb_cfg, {ovn.LIVENESS_CHECK: str(now)})
    stamp = int(now.timestamp() * 1000)
    ops: list[dict[str, Any]] = []
    for host in HOSTS:
        where = [["name", "==", str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, host))]]
        if host not in dead and host != DEAD_CONTROLLER:
            echoed = nb_cfg - 1 if host == LAGGING else nb_cfg
            row = {"nb_cfg": echoed, "nb_cfg_timestamp": stamp}
            ops.append({"op": "update", "table": "Chassis_Private", "where": where, "row": row})
        if host in WITH_METADATA:
            mutations = [
                ["external_ids", "delete", ["set", [ovn.METADATA_CFG]]],
                ["external_ids", "insert", ovn_servers.ovsdb_map({ovn.METADATA_CFG: nb_cfg})],
            ]
            ops.append({"op": "mutate", "table": "Chassis_Private", "where": where, "mutations": mutations})
    dbs.sb.transact(ops)
