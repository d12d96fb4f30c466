"""Reports received and sent: DMARC aggregate reports (RFC 7489 §7.2) and TLS reports
(RFC 8460).

Server-level (like :mod:`kittiwake.junk`): uses the store, the config and the
standards' leaf packages; the server hands in the outbox and the resolver.
DMARC: :mod:`.dmarcdb` (the database), :mod:`.dmarc_incoming` (collecting
reports delivered to each domain's ``dmarc_reports`` mailbox),
:mod:`.dmarc_outgoing` (recording evaluations, the daily reports),
:mod:`.dmarc_metrics`. TLSRPT: the ``tlsrpt_*`` modules (database, collector of
the ``tlsrpt_reports`` mailbox, daily outgoing reports by mail and HTTPS).
"""
