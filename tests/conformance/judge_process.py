"""A judge script running in an OpenStack project's venv, asked one JSON line at a time.

The script side is judge_lines.answer_lines; this is the test side: one long-lived process for many
clouds, so that the project is imported once.
"""
from __future__ import annotations

import json
import pathlib
import select
import subprocess

ANSWER_TIMEOUT = 120  # seconds; Nova's own limit per cell is 60


class JudgeProcess:
    def __init__(self, python: pathlib.Path, script: pathlib.Path, name: str, stderr_path: pathlib.Path):
        self.name = name
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, encoding="utf-8")

    def _fail(self, why: str):
        tail = self.stderr_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{self.name} {why}; its stderr ends with:\n{tail}")

    def request(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_TIMEOUT)
        if not ready:
            self.proc.kill()  # a late answer would be taken for the next request's
            self._fail(f"gave no answer within {ANSWER_TIMEOUT}s")
        line = self.proc.stdout.readline()
        if not line:
            self._fail(f"exited with {self.proc.wait()}")
        answer = json.loads(line)
        if "failed" in answer:
            raise RuntimeError(f"{self.name} failed on {request}:\n{answer['failed']}")
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
