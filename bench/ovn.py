"""A reading of 5,000 OVN chassis beside a reading of 5,000 Neutron SQL agents, side by side.

    python3 -m bench.ovn [--chassis 5000] [--repeat 7] [--neutron-schema tests/fixtures/neutron_schema.sql] [--idl]

OVN: a private northbound and southbound ovsdb-server (tests/ovsdb_server.py) with N chassis as
ovn-controller leaves them (other_config as OVN 23+ writes it, a metadata agent on each), read with
openstack_service_exporter.sources.ovn (a monitor per database, kept between readings) and judged: the
first reading (the monitors start), readings with nothing changed, and the reading after each ping
round (NB_Global.nb_cfg raised, then every chassis and metadata agent echoing it, in transactions of 50
chassis), with the monitors' own CPU time for that round. SQL: a private MariaDB
(tests/mariadb.py) with N rows in Neutron's `agents` table (its schema file; that half is skipped when
the file is absent), read with the core's read_table and judged by Neutron's inclusive rule.
--idl also times the `ovs` library's own IDL on the same chassis: its first full read (its JSON parser
is pure Python without a libopenvswitch build) and its cache read.
Prints the median of --repeat readings of each, in milliseconds, and whether a scrape of the chassis
(read and rule) costs no more than one of the SQL agents.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from ovsdb_server import Chassis, OvnDatabases, ovsdb_map  # noqa: E402

from openstack_service_exporter.config import Settings  # noqa: E402
from openstack_service_exporter.reader import ReadContext, wall_clock_us  # noqa: E402
from openstack_service_exporter.sources import ovn, ovsdb  # noqa: E402
from openstack_service_exporter.sources.ovsdb import Remote  # noqa: E402

OTHER_CONFIG = {  # what ovn-controller 23.x writes, plus Neutron's cms options on a gateway
    "ovn-cms-options": "enable-chassis-as-gw,availability-zones=az1:az2",
    "ovn-bridge-mappings": "physnet1:br-ex",
    "datapath-type": "system",
    "is-interconnect": "false",
    "ovn-chassis-mac-mappings": "",
    "iface-types": "afxdp,afxdp-nonpmd,bareudp,erspan,geneve,gre,gtpu,internal,ip6erspan,ip6gre,lisp,patch,srv6,"
    "stt,system,tap,vxlan",
    "ovn-enable-lflow-cache": "true",
    "ovn-limit-lflow-cache": "",
    "ovn-memlimit-lflow-cache-kb": "",
    "ovn-monitor-all": "false",
    "ovn-trim-limit-lflow-cache": "",
    "ovn-trim-timeout-ms": "",
    "ovn-trim-wmark-perc-lflow-cache": "",
    "port-up-notif": "true",
    "fdb-timestamp": "true",
    "ls-dpg-column": "true",
    "mac-binding-timestamp": "true",
    "ct-no-masked-label": "true",
    "ovn-ct-lb-related": "true",
    "ct-commit-nat-v2": "true",
    "ct-commit-to-zone": "true",
    "ct-next-zone": "true",
}
NOW_MS = int(time.time() * 1000)


def chassis(n: int) -> list[Chassis]:
    return [
        Chassis(
            str(uuid.uuid4()),
            f"compute-{i}.example.org",
            100,
            NOW_MS - i,
            {ovn.METADATA_ID: str(uuid.uuid4()), ovn.METADATA_CFG: "100"},
            dict(OTHER_CONFIG),
        )
        for i in range(n)
    ]


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


def ping_round(dbs: OvnDatabases, names: list[str], nb_cfg: int, batch: int = 50) -> None:
    """What a ping of neutron-server leaves: NB_Global.nb_cfg raised, then every ovn-controller and
    metadata agent echoing it (many small transactions, as many chassis write their own)."""
    dbs.set_nb_cfg(nb_cfg)
    stamp = int(time.time() * 1000)
    for start in range(0, len(names), batch):
        dbs.sb.transact(
            [
                {
                    "op": "update",
                    "table": "Chassis_Private",
                    "where": [["name", "==", name]],
                    "row": {"nb_cfg": nb_cfg, "nb_cfg_timestamp": stamp},
                }
                for name in names[start : start + batch]
            ]
            + [
                {
                    "op": "mutate",
                    "table": "Chassis_Private",
                    "where": [["name", "==", name]],
                    "mutations": [
                        ["external_ids", "delete", ["set", [ovn.METADATA_CFG]]],
                        ["external_ids", "insert", ovsdb_map({ovn.METADATA_CFG: str(nb_cfg)})],
                    ],
                }
                for name in names[start : start + batch]
            ]
        )


def bench_ovn(base: pathlib.Path, n: int, repeat: int, ctx: ReadContext, idl: bool) -> dict:
    dbs = OvnDatabases(base / "ovn").start()
    try:
        dbs.set_nb_cfg(100)
        cloud = chassis(n)
        dbs.set_chassis(cloud)
        config = ovn.OvnConfig(Remote((dbs.nb.tcp,)), Remote((dbs.sb.tcp,)))

        def read():
            reading = config.read(ctx, time.monotonic() + 30, 30)
            assert reading.complete and len(reading.rows) == 2 * n, reading.databases
            return reading

        first_ms, _ = timed(read, 1)  # the monitors start: connection and the whole tables
        read_ms, reading = timed(read, repeat)  # nothing changed since: what most scrapes cost
        judge_ms, _ = timed(lambda: ovn.judge(reading.rows, wall_clock_us(), 75), repeat)
        names = [c.name for c in cloud]
        after_ping, monitor_cpu = [], []
        for r in range(repeat):
            cpu = sum(m.cpu_seconds() for m in ovsdb.monitors())
            ping_round(dbs, names, 101 + r)
            after_ping.append(timed(read, 1)[0])
            monitor_cpu.append((sum(m.cpu_seconds() for m in ovsdb.monitors()) - cpu) * 1000)
        assert {row.nb_cfg for row in read().rows} == {100 + repeat}
        out = {
            "agents": len(reading.rows),
            "first_read_ms": first_ms,
            "read_ms": read_ms,
            "judge_ms": judge_ms,
            "read_after_ping_ms": statistics.median(after_ping),
            "monitor_cpu_per_ping_ms": statistics.median(monitor_cpu),
        }
        if idl:
            out.update(idl_first_read(dbs.sb.tcp))
        return out
    finally:
        ovsdb.close_all()
        dbs.stop()


def idl_first_read(remote: str) -> dict:
    import ovs.db.idl
    import ovs.jsonrpc
    import ovs.poller
    import ovs.stream

    started = time.perf_counter()
    _, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote))
    conn = ovs.jsonrpc.Connection(stream)
    _, reply = conn.transact_block(ovs.jsonrpc.Message.create_request("get_schema", [ovn.SB_DATABASE]))
    conn.close()
    helper = ovs.db.idl.SchemaHelper(schema_json=reply.result)
    for select in ovn.SB_SELECTS:
        helper.register_columns(select.table, list(select.columns))
    idl = ovs.db.idl.Idl(remote, helper, leader_only=False)
    try:
        while not (idl.has_ever_connected() and idl.tables["Chassis_Private"].rows):
            idl.run()
            poller = ovs.poller.Poller()
            idl.wait(poller)
            poller.block()
        first = time.perf_counter() - started
        started = time.perf_counter()
        rows = [
            (
                r.name,
                r.nb_cfg,
                r.nb_cfg_timestamp,
                dict(r.external_ids),
                r.chassis[0].hostname,
                dict(r.chassis[0].other_config),
            )
            for r in idl.tables["Chassis_Private"].rows.values()
        ]
        return {
            "idl_first_read_ms": first * 1000,
            "idl_cache_read_ms": (time.perf_counter() - started) * 1000,
            "idl_rows": len(rows),
        }
    finally:
        idl.close()


class AgentsQuery:
    """Neutron's agents columns, as the Neutron source reads them (times as naive UTC)."""

    sql = (
        "SELECT id, agent_type, `binary`, topic, host, availability_zone, admin_state_up, created_at, "
        "started_at, heartbeat_timestamp FROM agents ORDER BY created_at, id"
    )

    def prepare(self, conn, dialect):
        return self.sql

    def rows(self, conn, prepared, label):
        with conn.cursor() as cur:
            cur.execute(prepared)
            return list(cur.fetchall())


def bench_sql(base: pathlib.Path, n: int, repeat: int, schema: pathlib.Path, ctx: ReadContext) -> dict:
    from mariadb import split_statements

    from .servers import start_mariadb

    server = start_mariadb(base / "mariadb")
    try:
        server.execute("CREATE DATABASE neutron")
        for statement in split_statements(schema.read_text()):
            server.execute(statement, database="neutron")
        now = datetime.datetime.utcnow().replace(microsecond=0)
        rows = [
            (
                str(uuid.uuid4()),
                "Open vSwitch agent",
                "neutron-openvswitch-agent",
                "N/A",
                f"compute-{i}.example.org",
                None,
                1,
                now,
                now,
                now,
                "{}",
            )
            for i in range(n)
        ]
        with server.admin("neutron") as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO agents (id, agent_type, `binary`, topic, host, availability_zone, "
                "admin_state_up, created_at, started_at, heartbeat_timestamp, configurations) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                rows,
            )
        server.execute("GRANT SELECT ON neutron.* TO 'nova'@'%'")
        url = server.url("neutron")
        query = AgentsQuery()
        read_ms, result = timed(lambda: ctx.read_table(url, query, ""), repeat)
        assert result.error is None and len(result.rows) == n, result.error
        limit, clock = 75_000_000, wall_clock_us()
        epoch = datetime.datetime(1970, 1, 1)

        def judge():
            return [(clock - (r[9] - epoch) // datetime.timedelta(microseconds=1)) <= limit for r in result.rows]

        judge_ms, _ = timed(judge, repeat)
        return {"agents": n, "read_ms": read_ms, "judge_ms": judge_ms}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.ovn", description=__doc__.splitlines()[0])
    parser.add_argument("--chassis", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--neutron-schema", type=pathlib.Path, default=REPO / "tests/fixtures/neutron_schema.sql")
    parser.add_argument("--idl", action="store_true")
    args = parser.parse_args(argv)
    ctx = ReadContext(Settings(), wall_clock_us, 4)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ovn-") as folder:
            base = pathlib.Path(folder)
            found = bench_ovn(base, args.chassis, args.repeat, ctx, args.idl)
            print("ovn:", found, flush=True)
            if not args.neutron_schema.exists():
                print(f"sql: skipped, {args.neutron_schema} is absent (Neutron's agents table comes with its source)")
                return 0
            sql = bench_sql(base, args.chassis, args.repeat, args.neutron_schema, ctx)
            print("sql:", sql, flush=True)
    finally:
        ctx.close()
    scrape_sql = sql["read_ms"] + sql["judge_ms"]
    for what, read in (("nothing changed", "read_ms"), ("after a ping round", "read_after_ping_ms")):
        scrape_ovn = found[read] + found["judge_ms"]
        verdict = "met" if scrape_ovn <= scrape_sql else "NOT met"
        print(f"scrape (read + rule), {what}: OVN {scrape_ovn:.1f} ms, SQL {scrape_sql:.1f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
