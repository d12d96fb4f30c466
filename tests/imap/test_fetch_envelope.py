"""FETCH ENVELOPE (RFC 9051 §7.5.2) from parsed messages, serialised as a client sees it."""

from __future__ import annotations

from kittiwake.imap.encode import encode_bytes
from kittiwake.imap.envelope import envelope, envelope_of_part
from kittiwake.message import parse


def env(header: str, utf8: bool = False) -> bytes:
    data = (header.replace("\n", "\r\n") + "\r\n\r\nbody\r\n").encode()
    return encode_bytes(list(envelope_of_part(parse(data), utf8)), utf8)


def test_all_fields_in_order() -> None:
    out = env("Date: Mon, 7 Feb 1994 21:52:25 -0800\nSubject: Hi\nFrom: A <a@x.test>\n"
              "Sender: s@x.test\nReply-To: r@x.test\nTo: t@x.test\nCc: c@x.test\n"
              "Bcc: b@x.test\nIn-Reply-To: <p@x.test>\nMessage-ID: <m@x.test>")
    assert out == (b'("Mon, 7 Feb 1994 21:52:25 -0800" "Hi" (("A" NIL "a" "x.test")) '
                   b'((NIL NIL "s" "x.test")) ((NIL NIL "r" "x.test")) ((NIL NIL "t" "x.test")) '
                   b'((NIL NIL "c" "x.test")) ((NIL NIL "b" "x.test")) "<p@x.test>" "<m@x.test>")')


def test_sender_and_reply_to_default_to_from() -> None:
    out = env("From: A <a@x.test>\nSender:")
    assert out == (b'(NIL NIL (("A" NIL "a" "x.test")) (("A" NIL "a" "x.test")) '
                   b'(("A" NIL "a" "x.test")) NIL NIL NIL NIL NIL)')


def test_absent_is_nil_and_empty_is_empty_string() -> None:
    out = env("Subject:\nMessage-ID:")
    assert out == b'(NIL "" NIL NIL NIL NIL NIL NIL NIL "")'


def test_groups_have_start_and_end_markers() -> None:
    out = env("To: Friends: a@x.test, b@y.test;, undisclosed-recipients:;")
    assert b'((NIL NIL "Friends" NIL)(NIL NIL "a" "x.test")(NIL NIL "b" "y.test")' \
           b'(NIL NIL NIL NIL)(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))' in out


def test_broken_addresses_get_placeholders_never_a_nil_host() -> None:
    out = env("To: nodomain, @onlydomain")
    assert b'((NIL NIL "nodomain" "MISSING_DOMAIN")(NIL NIL "MISSING_MAILBOX" "onlydomain"))' \
        in out


def test_subject_stays_encoded_names_are_7bit_without_utf8() -> None:
    out = env("Subject: =?utf-8?q?caf=C3=A9?=\nFrom: =?utf-8?q?J=C3=B6rg?= <j@x.test>")
    assert b'"=?utf-8?q?caf=C3=A9?="' in out
    assert b'(("=?utf-8?B?SsO2cmc=?=" NIL "j" "x.test"))' in out


def test_names_are_utf8_when_enabled() -> None:
    out = env("From: =?utf-8?q?J=C3=B6rg?= <j@x.test>", utf8=True)
    assert '(("Jörg" NIL "j" "x.test"))'.encode() in out


def test_8bit_subject_is_a_literal_without_utf8() -> None:
    out = env("Subject: Grüße")
    assert b'{7}\r\nGr\xc3\xbc\xc3\x9fe' in out
    assert '"Grüße"'.encode() in env("Subject: Grüße", utf8=True)


def test_no_envelope_is_all_nil() -> None:
    assert encode_bytes(list(envelope(None))) == b"(" + b" ".join([b"NIL"] * 10) + b")"
