"""The registry: every OpenStack project the exporter can read, in the order its outputs list them."""
from . import nova

SOURCES = (
    nova.SOURCE,
)
