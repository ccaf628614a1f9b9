"""Prometheus exporter of Nova's own up/down verdict for every service, read from Nova's databases."""

__version__ = "0.1.0"
