"""Failure triggers of ``kittiwake localserve``, for testing the senders of mail.

The localpart of an address asks for a failure by its ending: ``temperror``
gets 451, ``permerror`` 550, a 3-digit code (``...550``, any 4xx or 5xx) that
code, ``timeout`` no answer at all (the client's own timeout fires, RFC 5321
§4.5.3.2). Where the failure comes:

- prefix ``mailfrom`` on the MAIL FROM address (``mailfromtemperror@x``): at
  MAIL FROM;
- prefix ``rcptto`` on a recipient address: at that RCPT TO;
- no prefix on a recipient address: after the message data.

A sender address without the ``mailfrom`` prefix, and a recipient address
with it, trigger nothing. On the submission ports the queue takes accepted
mail and delivers it to localserve's SMTP port, so a data-stage failure is
accepted first and then retried (4xx, timeout) or bounced with a DSN (5xx).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kittiwake.smtp import Reply

_CODE = re.compile(r"([2-5][0-9][0-9])$")

Stage = Literal["mailfrom", "rcptto", "data"]


@dataclass(frozen=True)
class Trigger:
    stage: Stage
    reply: Reply | None  # None means: never answer (timeout)


def trigger(localpart: str) -> Trigger | None:
    """The failure a localpart asks for, or None for normal delivery."""
    local = localpart.lower()
    stage: Stage = "data"
    if local.startswith("mailfrom"):
        stage = "mailfrom"
    elif local.startswith("rcptto"):
        stage = "rcptto"
    who = "sender address (MAIL FROM)" if stage == "mailfrom" else "recipient address"
    if local.endswith("temperror"):
        return Trigger(stage, Reply(451, "4.3.0", [f"temporary error requested by {who}"
                                                   " (localserve)"]))
    if local.endswith("permerror"):
        return Trigger(stage, Reply(550, "5.1.1", [f"permanent error requested by {who}"
                                                   " (localserve)"]))
    if local.endswith("timeout"):
        return Trigger(stage, None)
    match = _CODE.search(local)
    if match and match.group(1)[0] in "45":
        code = int(match.group(1))
        enhanced = f"{match.group(1)[0]}.0.0"
        return Trigger(stage, Reply(code, enhanced, [f"error {code} requested by {who}"
                                                     " (localserve)"]))
    return None
