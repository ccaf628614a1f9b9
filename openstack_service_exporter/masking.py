"""Secrets out of every message: database credentials masked on the raw text, before any parser.

A URL's parser cannot be trusted to find the password: with a raw `/`, `?` or `#` in it the
authority ends early, and with a raw `@` SQLAlchemy (whose password is `[^@]*`) takes the rest of
the password for the host name, which the drivers then print in their errors. So the text itself is
masked, wherever it comes from (SQLAlchemy's messages, the drivers' exceptions, our own):

- in a run of non-blank characters holding `://`, everything between `://` and the last `@` of the
  run (user and password; a URL cannot hold a blank, so the run holds its whole authority);
- in any other quoted or blank-separated word holding `@`, everything before its last `@` (a host
  name that begins with a password's tail: `'ss@db.example.net'`).
"""

from __future__ import annotations

import re

MASK = "***"
_BLANKS = re.compile(r"(\s+)")
_QUOTES = re.compile(r"""(['"`])""")


def mask(text: str) -> str:
    """`text` with every credential that a URL, or the host name cut from one, could carry replaced by ***."""
    return "".join(_mask_run(run) for run in _BLANKS.split(text))


def _mask_run(run: str) -> str:
    start = run.find("://")
    if start >= 0:
        end = run.rfind("@")
        if end > start:
            return run[: start + 3] + MASK + run[end:]
        return _mask_words(run[:start]) + run[start:]
    return _mask_words(run)


def _mask_words(run: str) -> str:
    if "@" not in run:
        return run
    return "".join(_mask_word(word) for word in _QUOTES.split(run))


def _mask_word(word: str) -> str:
    end = word.rfind("@")
    return word if end <= 0 else MASK + word[end:]
