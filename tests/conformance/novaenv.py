"""Nova 34.0.0 for the Nova suite and bench/: it lives in the shared venv of every project the
exporter is compared with (oracles.py); this name is kept for the callers that use it."""

from oracles import ensure, python, venv_dir  # noqa: F401
