"""Session fixtures: one private MariaDB for the whole test session, fresh databases per test."""

from __future__ import annotations

import itertools
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from mariadb import MariaDB  # noqa: E402

_names = itertools.count(1)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory):
    server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    server.install()
    server.start()
    server.create_user()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_factory(mariadb):
    """Factory, for fixtures of any scope: database_factory('services' | 'api' | '<project>') -> the name
    of a fresh database with that schema (tests/fixtures/<schema>_schema.sql)."""

    def make(schema: str = "services") -> str:
        name = f"t{next(_names)}_{schema}"
        mariadb.create_database(name, schema)
        return name

    return make


@pytest.fixture
def new_db(database_factory):
    """Factory: new_db('services' | 'api' | '<project>') -> the name of a fresh database with that schema."""
    return database_factory
