"""Nova: every service of every cell, judged as nova-api judges it (GET /os-services)."""

from .source import SOURCE, NovaConfig

__all__ = ["SOURCE", "NovaConfig"]
