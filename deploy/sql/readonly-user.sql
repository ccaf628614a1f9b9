-- A least-privilege database user for openstack-service-exporter (MariaDB and MySQL).
--
-- The exporter reads exactly these tables (openstack_service_exporter/nova_db.py) and nothing else:
--   API database:       cell_mappings (5 columns), aggregates, aggregate_hosts, aggregate_metadata
--   each cell database: services
-- It writes nothing and needs no privilege for its other statements (SELECT 1, UTC_TIMESTAMP()).
--
-- Adapt before applying, as the database administrator:
--   * the password: replace CHANGE_ME, e.g.
--       sed "s/CHANGE_ME/$(openssl rand -hex 24)/" readonly-user.sql | mysql
--   * the host part '%': the address the exporter connects from, if you can (e.g. '10.0.0.%').
--   * the database names: `nova_api`, `nova_cell0` and `nova` are what most deployment tools create
--     (`nova-manage cell_v2 list_cells --verbose` shows every cell's database). Add one
--     GRANT ... ON `<cell database>`.`services` line per further cell.
-- Then give the exporter this user's URLs instead of Nova's, in its own fragment (later files win):
--   [api_database]
--   connection = mysql+pymysql://nova_exporter:PASSWORD@dbhost/nova_api?charset=utf8
--   [database]
--   connection = mysql+pymysql://nova_exporter:PASSWORD@dbhost/nova?charset=utf8
--
-- Cells: the exporter connects to each cell with the database_connection of its cell mapping. When
-- that is a template, as `nova-manage cell_v2 create_cell` stores it when given one, e.g.
--   {scheme}://{username}:{password}@{hostname}/nova_cell1?{query}
-- the exporter fills it from its own [database] connection, so it reads every cell as this user.
-- A literal URL is used as is, with the credentials written in it (usually Nova's own user): this user
-- can read database_connection, so with literal URLs it can read those credentials too. Store templates
-- (`nova-manage cell_v2 update_cell --cell_uuid UUID --database_connection '{scheme}://...'`) to keep
-- Nova's password away from the exporter.
--
-- Not granted, on purpose: cell_mappings.transport_url (the message queue's password), and every
-- other table (instances, build_requests, ...).

CREATE USER IF NOT EXISTS 'nova_exporter'@'%' IDENTIFIED BY 'CHANGE_ME';

GRANT SELECT (`id`, `uuid`, `name`, `database_connection`, `disabled`)
    ON `nova_api`.`cell_mappings` TO 'nova_exporter'@'%';
GRANT SELECT ON `nova_api`.`aggregates` TO 'nova_exporter'@'%';
GRANT SELECT ON `nova_api`.`aggregate_hosts` TO 'nova_exporter'@'%';
GRANT SELECT ON `nova_api`.`aggregate_metadata` TO 'nova_exporter'@'%';

GRANT SELECT ON `nova_cell0`.`services` TO 'nova_exporter'@'%';
GRANT SELECT ON `nova`.`services` TO 'nova_exporter'@'%';
