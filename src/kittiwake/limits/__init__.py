"""Abuse limits shared by every protocol server (SMTP now, IMAP next).

A leaf package: it knows no config, store or server, only addresses, account
names and a clock. ``login`` slows password guessing; ``connections`` counts
open connections per IP and for the whole process.
"""

from kittiwake.limits.connections import ConnectionSlots, Refusal, Slot
from kittiwake.limits.login import Attempt, LoginLimiter, LoginPolicy, source_keys

__all__ = ["Attempt", "ConnectionSlots", "LoginLimiter", "LoginPolicy", "Refusal", "Slot",
           "source_keys"]
