"""Database URLs made safe to show: the password never reaches a log, a message, a metric or a page."""
from __future__ import annotations

import re

_PASSWORD_IN_URL = re.compile(r"(?P<head>://[^/@]*?:)(?P<secret>[^/]*)(?P<tail>@)")


def mask_url(url: str) -> str:
    """A database URL safe to show: the password (everything between user: and @) replaced by ***.
    Works on text that is not a valid URL too, since error messages must never carry the secret."""
    return _PASSWORD_IN_URL.sub(lambda m: m.group("head") + "***" + m.group("tail"), url)
