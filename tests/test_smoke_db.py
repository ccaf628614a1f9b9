from cloud import insert_services, service
from exporter.config import Settings
from exporter.snapshot import Reader


def test_reads_rows_from_mariadb(mariadb, new_db):
    db = new_db("services")
    insert_services(mariadb, db, [service("h1"), service("h2", "nova-osapi_compute")])
    reader = Reader(Settings(database_connection=mariadb.url(db)))
    snap = reader.read()
    reader.close()
    assert [r.host for r in snap.rows] == ["h1"]
    assert snap.cells[0].up
