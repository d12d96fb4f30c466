"""Odd messages for the FETCH tests: each is a case a real mailbox holds.

``CORPUS`` maps a name to the message bytes. They are written here with
``\\n`` and stored with CRLF (the store keeps messages as received, and
SMTP delivers CRLF), except ``BARE_LF`` which keeps bare LF line ends on
purpose.
"""

from __future__ import annotations

import base64


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


_DEEP_LEVELS = 12


def _deep() -> str:
    head = "From: deep@x.test\nSubject: deep\nMIME-Version: 1.0\n"
    out = head
    for i in range(_DEEP_LEVELS):
        out += f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
    out += "Content-Type: text/plain\n\ninnermost\n"
    for i in reversed(range(_DEEP_LEVELS)):
        out += f"--b{i}--\n"
    return out


def _deep_messages() -> str:
    out = "From: outer@x.test\nSubject: level 0\nContent-Type: message/rfc822\n\n"
    for i in range(1, 6):
        out += f"From: l{i}@x.test\nSubject: level {i}\nContent-Type: message/rfc822\n\n"
    return out + "From: last@x.test\nSubject: last\n\nthe end\n"


_B64 = base64.encodebytes(b"binary \x00\x01\x02 data " * 20).decode("ascii")

CORPUS_TEXT: dict[str, str] = {
    "plain": """\
From: Alice Example <alice@example.org>
To: Bob <bob@example.net>, carol@example.net
Cc: "Dave, the third" <dave@example.com>
Subject: Hello there
Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)
Message-ID: <B27397-0100000@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello Bob,
how are you?
""",
    "no-content-type": """\
From: a@x.test
Subject: no content type

just text
""",
    "bad-content-type": """\
From: a@x.test
Subject: bad content type
Content-Type: texthtml; charset=utf-8

<p>hi</p>
""",
    "uppercase-type": """\
From: a@x.test
Content-Type: TEXT/HTML; CHARSET="ISO-8859-1"; Format=Flowed
Content-Transfer-Encoding: Quoted-Printable

caf=E9
""",
    "html-no-charset": """\
From: a@x.test
Content-Type: text/html

<html><body><p>Hi</p></body></html>
""",
    "mixed-alternative": """\
From: Sender <s@x.test>
To: r@y.test
Subject: alternative in mixed
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=us-ascii

plain version
--inner
Content-Type: text/html; charset=us-ascii

<b>html version</b>
--inner--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename="report.pdf"; size=20
Content-Transfer-Encoding: base64
Content-ID: <part1@x.test>
Content-Description: The report
Content-Language: en, de
Content-Location: http://x.test/report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

""" + _B64 + """--outer--
This is the epilogue.
""",
    "nested-rfc822": """\
From: fwd@x.test
Subject: Fwd: original
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/plain

see below
--b1
Content-Type: message/rfc822
Content-Disposition: inline

From: Original <orig@y.test>
To: someone@z.test
Subject: original
Date: Tue, 1 Dec 2026 10:00:00 +0000
Message-ID: <orig@y.test>
In-Reply-To: <parent@y.test>
Content-Type: multipart/alternative; boundary=b2

--b2
Content-Type: text/plain; charset=utf-8

inner plain
--b2
Content-Type: text/html; charset=utf-8

<p>inner html</p>
--b2--
--b1--
""",
    "message-global": """\
From: a@x.test
Subject: global
Content-Type: message/global

From: =?utf-8?q?J=C3=B6rg?= <joerg@x.test>
Subject: Grüße

Hallo
""",
    "rfc822-nonmultipart": """\
From: a@x.test
Subject: outer
Content-Type: message/rfc822

From: b@y.test
Subject: inner

inner body
""",
    "missing-boundary": """\
From: a@x.test
Subject: no boundary
Content-Type: multipart/mixed

--foo
Content-Type: text/plain

text
--foo--
""",
    "boundary-not-found": """\
From: a@x.test
Subject: boundary not found
Content-Type: multipart/mixed; boundary=nothere

--other
Content-Type: text/plain

text
--other--
""",
    "unclosed-multipart": """\
From: a@x.test
Subject: unclosed
Content-Type: multipart/mixed; boundary=u

--u
Content-Type: text/plain

first
--u
Content-Type: text/plain

second, never closed
""",
    "empty-parts": """\
From: a@x.test
Content-Type: multipart/mixed; boundary=e

--e
--e

--e--
""",
    "encoded-words": """\
From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>
To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>
Cc: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=
 =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=

body
""",
    "groups": """\
From: a@x.test
To: undisclosed-recipients:;
Cc: Friends: one@x.test, "Two" <two@y.test>;, three@z.test
Bcc: empty:;, after@x.test

body
""",
    "broken-from": """\
From: this is not <an address
Sender: <>
Reply-To: @@@
To: a@, @b, <c>
Subject: broken addresses

body
""",
    "route-and-comments": """\
From: (lead comment) John Doe <@route1,@route2:jdoe@machine.example> (trailing)
Sender: jdoe@machine.example (John Doe)
To: "Mary Smith: Personal Account" <smith@home.example>
Subject: routes

body
""",
    "eight-bit-headers": """\
From: Jörg Ünger <jörg@bücher.example>
To: 测试 <test@例子.测试>
Subject: Grüße aus Köln
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße
""",
    "base64-bad-padding": """\
From: a@x.test
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

SGVsbG8gd29ybGQ
!!junk!!
""",
    "qp-soft-breaks": """\
From: a@x.test
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

This is a long line that is broken with a soft=
 line break and has an equals sign =3D here.=20
Trailing=
""",
    "unknown-cte": """\
From: a@x.test
Content-Type: application/octet-stream
Content-Transfer-Encoding: x-uuencode

begin 644 file
#86)C
`
end
""",
    "empty-body": """\
From: a@x.test
Subject: empty body

""",
    "header-only": """\
From: a@x.test
Subject: header only, no blank line
""",
    "params-rfc2231": """\
From: a@x.test
Content-Type: multipart/mixed; boundary="=_b"

--=_b
Content-Type: application/octet-stream;
 name*0="long file ";
 name*1="name.txt"
Content-Disposition: attachment;
 filename*=UTF-8''na%C3%AFve%20file.txt

data
--=_b
Content-Type: text/plain; charset="us-ascii"; format=flowed; delsp=yes
Content-Disposition: inline

flowed
--=_b--
""",
    "digest": """\
From: a@x.test
Content-Type: multipart/digest; boundary=d

--d

From: one@x.test
Subject: digest one

one
--d
Content-Type: text/plain

not a message
--d--
""",
    "encoded-message": """\
From: a@x.test
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

RnJvbTogeEB5LnRlc3QKU3ViamVjdDogZW5jb2RlZAoKYm9keQo=
""",
    "deep-multipart": _deep(),
    "deep-messages": _deep_messages(),
    "folded-headers": """\
From: "Very Long
 Name" <long@x.test>
Subject: a subject
 folded over
\tthree lines
Date:
 Wed, 2 Dec 2026 08:00:00 +0100
Message-ID:
 <folded@x.test>
Content-Type: text/plain;
 charset=utf-8

folded
""",
    "empty-fields": """\
From: a@x.test
Subject:
Date:
Message-ID:
In-Reply-To:
Sender:
Reply-To:
To:

empty header values
""",
    "duplicate-fields": """\
From: first@x.test
From: second@x.test
Subject: first subject
Subject: second subject

duplicates
""",
    "multipart-in-message-in-multipart": """\
From: a@x.test
Content-Type: multipart/related; boundary=r; type="text/html"

--r
Content-Type: message/rfc822

From: b@x.test
Content-Type: multipart/mixed; boundary=m

--m
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--m--
--r--
""",
    "text-no-trailing-newline": """\
From: a@x.test
Content-Type: multipart/mixed; boundary=n

--n
Content-Type: text/plain

line one
line two
--n
Content-Type: text/plain

no newline at end
--n--""",
    "signed": """\
From: a@x.test
Content-Type: multipart/signed; protocol="application/pgp-signature";
 micalg=pgp-sha256; boundary="sig"

--sig
Content-Type: text/plain; charset=utf-8

signed text
--sig
Content-Type: application/pgp-signature; name="signature.asc"
Content-Disposition: attachment; filename="signature.asc"

-----BEGIN PGP SIGNATURE-----
abc
-----END PGP SIGNATURE-----
--sig--
""",
    "disposition-case": """\
From: a@x.test
Content-Type: image/JPEG; Name=Photo.JPG
Content-Disposition: ATTACHMENT; FileName=Photo.JPG; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"
Content-Language: en-US
Content-Transfer-Encoding: BASE64

/9j/4AAQ
""",
}
CORPUS_TEXT.update({
    "rfc2047-in-param": """\
From: a@x.test
Content-Type: application/pdf; name="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="
Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="
Content-Transfer-Encoding: base64

JVBERi0xLjQK
""",
    "comments-in-mime-fields": """\
From: a@x.test
MIME-Version: 1.0 (produced by a tool)
Content-Type: text/plain (a comment); charset="utf-8" (another)
Content-Transfer-Encoding: BASE64 (encoded)

aGVsbG8K
""",
    "multipart-extension-fields": """\
From: a@x.test
Content-Type: multipart/mixed; boundary=x; charset=utf-8
Content-Disposition: inline; filename=all
Content-Language: fr
Content-Location: http://x.test/all

--x
Content-Type: text/plain; charset=utf-8
Content-Language: de-CH

Grüezi
--x--
""",
    "report": """\
From: MAILER-DAEMON@x.test
To: a@x.test
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary=r

--r
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.
--r
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; x.test

Final-Recipient: rfc822; b@y.test
Action: failed
Status: 5.1.1
--r
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: a@x.test
Subject: lost
--r--
""",
    "message-8bit": """\
From: a@x.test
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

From: b@x.test
Subject: inner 8bit

Grüße
""",
    "params-without-charset": """\
From: a@x.test
Content-Type: text/plain; format=flowed; delsp=yes

flowed text
""",
    "text-with-name-no-charset": """\
From: a@x.test
Content-Type: multipart/mixed; boundary=z

--z
Content-Type: text/csv; name="data.csv"
Content-Disposition: attachment; filename="data.csv"

a,b
--z--
""",
    "empty-charset": """\
From: a@x.test
Content-Type: text/plain; charset=""

text
""",
    "address-edge-cases": """\
From: "quoted \\"name\\"" <q@x.test>
To: Undisclosed <>, a@b.test (comment only), <@route:x@y.test>, "a@b" <c@d.test>
Cc: "" <empty@x.test>, Jo (nick) Smith <js@x.test>
Bcc: =?utf-8?b?0JjQstCw0L0=?= <ivan@x.test>, =?broken?= <b@x.test>
In-Reply-To: <a@b.test> <c@d.test>
References: <a@b.test> <c@d.test>
Message-ID: no-angle-brackets@x.test

body
""",
    "long-subject": "From: a@x.test\nSubject: " + "long " * 300 + "\n\nbody\n",
    "nul-in-body": "From: a@x.test\nContent-Type: application/octet-stream\n"
                   "Content-Transfer-Encoding: binary\n\nbin\x00ary\x00data\n",
    "quoted-boundary-spaces": """\
From: a@x.test
Content-Type: multipart/mixed;
 boundary="----=_Part_0_12345.67890"

------=_Part_0_12345.67890
Content-Type: text/plain

quoted boundary
------=_Part_0_12345.67890--
""",
})

CORPUS: dict[str, bytes] = {name: _crlf(text) for name, text in CORPUS_TEXT.items()}
# Raw 8-bit header text that is not UTF-8 (legacy mailers writing latin-1).
CORPUS["latin1-headers"] = (b"From: J\xf6rg <j@x.test>\r\nSubject: caf\xe9 cr\xe8me\r\n"
                            b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n")

# Bare LF line ends, as some local tools write them (stored as received).
BARE_LF: bytes = CORPUS_TEXT["mixed-alternative"].encode("utf-8")
