"""The judges' side of judge_process.py: run by the oracle venv's python, inside the judge script."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable


def answer_lines(make_handler: Callable[[], Callable[[dict], dict]]) -> int:
    """One JSON answer line on stdout per JSON request line on stdin, from the handler made once
    stdout is set aside; an exception while answering is sent back as {"failed": "<traceback>"}, so
    one bad request fails one test, not every later one."""
    # Only answers go to the real stdout; whatever the project prints lands on stderr.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    handle = make_handler()
    for line in sys.stdin:
        try:
            answer = handle(json.loads(line))
        except Exception:
            answer = {"failed": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0
