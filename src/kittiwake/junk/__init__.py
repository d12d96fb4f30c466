"""Per-account junk filtering: sender reputation from the account's own history,
then a Bayesian content classifier trained from its mailboxes (DESIGN.md "junk/").

The MX asks :meth:`JunkFilter.classify` for a :class:`JunkVerdict` per
account; the verdict picks the mailbox (Junk, Rejects, or the destination's),
the ``X-Kittiwake-Junk`` header and, for rejects, the SMTP reply.
"""

from kittiwake.junk.filter import CheckResult, JunkFilter
from kittiwake.junk.model import Action, JunkVerdict, Reason, Reject, SenderIdentities

__all__ = ["Action", "CheckResult", "JunkFilter", "JunkVerdict", "Reason", "Reject",
           "SenderIdentities"]
