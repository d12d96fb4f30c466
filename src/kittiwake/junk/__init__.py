"""Per-account junk filtering: sender reputation from the account's own history,
then a Bayesian content classifier trained from its mailboxes (DESIGN.md "junk/").

The MX asks :meth:`JunkFilter.classify` for a :class:`JunkVerdict` per
account; the verdict picks the mailbox (Junk, Rejects, or the destination's),
the ``X-Kittiwake-Junk`` header and, for rejects, the SMTP reply.

The names are loaded on first use (PEP 562): a CPU worker process that needs
only :mod:`kittiwake.junk.tokens` does not import the filter, the store and the
configuration with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kittiwake import lazynames

if TYPE_CHECKING:
    from kittiwake.junk.filter import CheckResult, JunkFilter
    from kittiwake.junk.model import Action, JunkVerdict, Reason, Reject, SenderIdentities

__all__ = ["Action", "CheckResult", "JunkFilter", "JunkVerdict", "Reason", "Reject",
           "SenderIdentities"]

_HOME = {"CheckResult": "filter", "JunkFilter": "filter", "Action": "model",
         "JunkVerdict": "model", "Reason": "model", "Reject": "model",
         "SenderIdentities": "model"}


__getattr__ = lazynames.loader(__name__, _HOME)
