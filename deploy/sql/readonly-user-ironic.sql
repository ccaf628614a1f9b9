-- Ironic's part of the least-privilege database user (MariaDB and MySQL); apply it beside
-- readonly-user.sql when the exporter reads Ironic ([ironic] config_file).
--
-- The exporter reads exactly one table of Ironic's database (openstack_service_exporter/sources/ironic.py): conductors, with a
-- table-level grant (its columns are detected with an empty SELECT *). It writes nothing. Adapt
-- CHANGE_ME, the host part '%' and the database name `ironic` as for readonly-user.sql (the same user
-- may serve every project). Then give the exporter this user's URL in a file read after ironic.conf
-- (later files win):
--   [database]
--   connection = mysql+pymysql://nova_exporter:PASSWORD@dbhost/ironic?charset=utf8

CREATE USER IF NOT EXISTS 'nova_exporter'@'%' IDENTIFIED BY 'CHANGE_ME';

GRANT SELECT ON `ironic`.`conductors` TO 'nova_exporter'@'%';
