"""Prometheus exporter of each OpenStack project's own up/down verdict for every service, read from its databases."""

__version__ = "0.1.0"
