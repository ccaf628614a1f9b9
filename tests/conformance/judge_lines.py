"""The script side of a judge process (see judge_process.py): run inside an OpenStack project's venv,
so it imports nothing of the exporter and nothing outside the standard library."""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Callable


def answer_lines(answer: Callable[[dict], dict]) -> int:
    """One JSON answer on stdout per JSON request on stdin. Only answers go to the real stdout:
    whatever the project prints lands on stderr. An exception is sent back as {"failed": traceback}:
    one bad request fails one test, not every later one."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    for line in sys.stdin:
        try:
            out = answer(json.loads(line))
        except Exception:
            out = {"failed": traceback.format_exc()}
        answers.write(json.dumps(out) + "\n")
        answers.flush()
    return 0
