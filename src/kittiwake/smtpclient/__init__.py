"""SMTP client for outgoing delivery and relaying (RFC 5321, 2920, 3030, 3207, 4954, 8689, 9422).

- ``capabilities``: the EHLO reply, parsed.
- ``transaction``: sans-I/O planning and running of MAIL transactions
  (pipelining, BDAT, RCPTMAX splitting, SMTPUTF8/8BITMIME/REQUIRETLS checks).
- ``results``: per-recipient outcomes with the remote replies, for DSNs.
- ``stream``: messages as prefix + file range, DATA dot-stuffing chunk by chunk.
- ``tlsinfo``: TLS version, cipher and the peer's certificate chain (DANE).
- ``client``: the asyncio driver, :class:`Client`.
"""

from kittiwake.smtpclient.capabilities import Capabilities
from kittiwake.smtpclient.client import Client, Timeouts, TLSMode, TLSVerify, unverified_context
from kittiwake.smtpclient.errors import (
    AuthError,
    ConnectError,
    ConnectionLost,
    ProtocolError,
    ReplyError,
    SMTPClientError,
    SMTPTimeout,
    TLSError,
    TLSRejection,
)
from kittiwake.smtpclient.results import (
    CommandReply,
    DeliveryResult,
    Outcome,
    RecipientResult,
    Stage,
)
from kittiwake.smtpclient.stream import DotStuffer, FileRange, MessageSource
from kittiwake.smtpclient.tlsinfo import TLSInfo, peer_chain, tls_info
from kittiwake.smtpclient.transaction import (
    DeliveryPlan,
    Recipient,
    Send,
    Transaction,
    outcome_of,
    plan_delivery,
)

__all__ = [
    "AuthError",
    "Capabilities",
    "Client",
    "CommandReply",
    "ConnectError",
    "ConnectionLost",
    "DeliveryPlan",
    "DeliveryResult",
    "DotStuffer",
    "FileRange",
    "MessageSource",
    "Outcome",
    "ProtocolError",
    "Recipient",
    "RecipientResult",
    "ReplyError",
    "SMTPClientError",
    "SMTPTimeout",
    "Send",
    "Stage",
    "TLSError",
    "TLSInfo",
    "TLSMode",
    "TLSRejection",
    "TLSVerify",
    "Timeouts",
    "Transaction",
    "outcome_of",
    "peer_chain",
    "plan_delivery",
    "tls_info",
    "unverified_context",
]
