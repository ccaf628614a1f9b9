"""The registry: every OpenStack project the exporter can read, in the order its outputs list them,
and the other exporters' families it can add ([exporter] compatibility)."""

from . import cinder, ironic, neutron, nova, openstack_exporter

SOURCES = (
    nova.SOURCE,
    cinder.SOURCE,
    neutron.SOURCE,
    ironic.SOURCE,
)

# [exporter] compatibility -> the families that mode adds: f(groups of (configured, judged), prefix)
COMPATIBILITY = {
    openstack_exporter.MODE: openstack_exporter.families,
}
