"""The registry: every OpenStack project the exporter can read, in the order its outputs list them."""
from . import cinder, nova

SOURCES = (
    nova.SOURCE,
    cinder.SOURCE,
)
