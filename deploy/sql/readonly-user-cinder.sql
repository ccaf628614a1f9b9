-- Cinder's part of the least-privilege database user (MariaDB and MySQL); apply it beside
-- readonly-user.sql when the exporter reads Cinder ([cinder] config_file).
--
-- The exporter reads exactly one table of Cinder's database (openstack_service_exporter/sources/cinder.py): services.
-- It writes nothing. Adapt CHANGE_ME, the host part '%' and the database name `cinder` as for
-- readonly-user.sql (the same user may serve every project). Then give the exporter this user's URL
-- in a fragment read after cinder.conf (later files win):
--   # /etc/openstack-service-exporter/exporter.conf
--   [cinder]
--   config_file = /etc/cinder/cinder.conf
--   config_file = /etc/openstack-service-exporter/cinder-readonly.conf
--   # /etc/openstack-service-exporter/cinder-readonly.conf
--   [database]
--   connection = mysql+pymysql://nova_exporter:PASSWORD@dbhost/cinder?charset=utf8

CREATE USER IF NOT EXISTS 'nova_exporter'@'%' IDENTIFIED BY 'CHANGE_ME';

GRANT SELECT ON `cinder`.`services` TO 'nova_exporter'@'%';
