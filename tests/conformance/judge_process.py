"""A judge: a script run by the oracle venv's python (oracles.py), answering one JSON line per JSON
request line, one long-lived process for many clouds so that the project is imported once."""

from __future__ import annotations

import json
import pathlib
import select
import subprocess


class JudgeProcess:
    def __init__(
        self,
        name: str,
        python: pathlib.Path,
        script: pathlib.Path,
        stderr_path: pathlib.Path,
        args: tuple[str, ...] = (),
        timeout: float = 120,
    ):
        self.name = name
        self.timeout = timeout
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(
            [str(python), str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )

    def _fail(self, why: str):
        tail = self.stderr_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{self.name} judge {why}; its stderr ends with:\n{tail}")

    def _request(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.proc.kill()  # a late answer would be taken for the next request's
            self._fail(f"gave no answer within {self.timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            self._fail(f"exited with {self.proc.wait()}")
        answer = json.loads(line)
        if "failed" in answer:
            raise RuntimeError(f"{self.name} judge failed on {request}:\n{answer['failed']}")
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
