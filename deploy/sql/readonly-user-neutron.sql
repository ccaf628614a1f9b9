-- Neutron's part of the least-privilege database user (MariaDB and MySQL); apply it beside
-- readonly-user.sql when the exporter reads Neutron ([neutron] config_file).
--
-- The exporter reads exactly one table of Neutron's database (openstack_service_exporter/sources/neutron.py): agents, with a
-- table-level grant (its columns are detected with an empty SELECT *). It writes nothing. Adapt
-- CHANGE_ME, the host part '%' and the database name `neutron` as for readonly-user.sql (the same user
-- may serve every project). Then give the exporter this user's URL in a file read after neutron.conf (and plugins/ml2/ml2_conf.ini)
-- (later files win):
--   [database]
--   connection = mysql+pymysql://nova_exporter:PASSWORD@dbhost/neutron?charset=utf8

CREATE USER IF NOT EXISTS 'nova_exporter'@'%' IDENTIFIED BY 'CHANGE_ME';

GRANT SELECT ON `neutron`.`agents` TO 'nova_exporter'@'%';
