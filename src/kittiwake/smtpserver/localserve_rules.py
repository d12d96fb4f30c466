"""Failure triggers of ``kittiwake localserve``, for testing the senders of mail.

A recipient (or MAIL FROM) localpart ending in ``temperror`` gets 451,
``permerror`` 550, a 3-digit code (``...550``) that code, ``timeout`` no
answer at all. With the prefix ``mailfrom`` or ``rcptto`` the failure comes at
that command; otherwise after the message data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kittiwake.smtp import Reply

_CODE = re.compile(r"([2-5][0-9][0-9])$")


@dataclass(frozen=True)
class Trigger:
    stage: str  # "mailfrom", "rcptto" or "data"
    reply: Reply | None  # None means: never answer (timeout)


def trigger(localpart: str) -> Trigger | None:
    """The failure a localpart asks for, or None for normal delivery."""
    local = localpart.lower()
    stage = "data"
    for prefix in ("mailfrom", "rcptto"):
        if local.startswith(prefix):
            stage = prefix
    if local.endswith("temperror"):
        return Trigger(stage, Reply(451, "4.3.0", ["temporary error requested by recipient"
                                                   " address (localserve)"]))
    if local.endswith("permerror"):
        return Trigger(stage, Reply(550, "5.1.1", ["permanent error requested by recipient"
                                                   " address (localserve)"]))
    if local.endswith("timeout"):
        return Trigger(stage, None)
    match = _CODE.search(local)
    if match and match.group(1)[0] in "45":
        code = int(match.group(1))
        enhanced = f"{match.group(1)[0]}.0.0"
        return Trigger(stage, Reply(code, enhanced, [f"error {code} requested by address"
                                                     " (localserve)"]))
    return None
