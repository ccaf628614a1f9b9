"""The registry: every OpenStack project the exporter can read, in the order its outputs list them."""
from . import cinder, ironic, nova

SOURCES = (
    nova.SOURCE,
    cinder.SOURCE,
    ironic.SOURCE,
)
