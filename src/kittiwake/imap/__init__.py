"""IMAP protocol core, sans-I/O (RFC 9051, RFC 3501 and extensions).

No sockets, no store, no clock: octets in, typed events out, and back.

- ``mutf7``: modified UTF-7 mailbox names (RFC 3501 §5.1.3), strict.
- ``commands``: one frozen dataclass per command, ``SequenceSet``, the
  search-key tree and FETCH items.
- ``parser``: the command grammar (RFC 9051 §9); ``parse_command`` gives
  ``(tag, command)`` or ``CommandError`` (reason, response code, BAD/NO).
- ``codes``: response codes (``Code``, RFC 9051 §7.1, RFC 5530, extensions).
- ``values`` / ``encode``: typed data values and their serialisation.
- ``section``: BODY[...]<...> section specifiers.
- ``responses``: the response writer (tagged, untagged data, continuation).
- ``events`` / ``server``: ``ServerSession``, the connection core the asyncio
  driver runs (framing, literals, streamed APPEND, states, IDLE, SASL).

A driver, in short::

    from kittiwake.imap import commands as c, responses as r
    from kittiwake.imap.codes import Code
    from kittiwake.imap.events import AppendData, AppendEnd, AppendStart, CommandReceived
    from kittiwake.imap.server import ServerConfig, ServerSession

    session = ServerSession(ServerConfig("mail.example.org"), tls=True)
    session.greet()
    for event in session.receive(data):          # then session.receive() again
        if isinstance(event, CommandReceived) and isinstance(event.command, c.Select):
            session.send(r.exists(3))
            session.send(r.untagged_status("OK", "", r.ResponseCode.uidnext(4)))
            session.ok(code=Code.READ_WRITE)
        elif isinstance(event, AppendStart):     # before the message octets come
            session.accept_literal()             # or session.no(code=Code.TRYCREATE)
        elif isinstance(event, AppendData):
            spool.write(event.data)
    write(session.data_to_send())                # bytes and FileLiteral pieces
"""
