from cloud import insert_services, service
from helpers import nova_settings

from openstack_service_exporter.reader import Reader


def test_reads_rows_from_mariadb(mariadb, new_db):
    db = new_db("services")
    insert_services(mariadb, db, [service("h1"), service("h2", "nova-osapi_compute")])
    reader = Reader(nova_settings(database_connection=mariadb.url(db)))
    snap = reader.read()
    reader.close()
    assert [r.host for r in snap.readings[0].rows] == ["h1"]
    assert snap.databases[0].up
