"""FETCH data compared with Dovecot (Debian dovecot-imapd) on the same messages.

One private Dovecot (tests/integration/dovecot.py) holds the corpus of odd
messages (tests/imap/fetch_corpus.py) in a Maildir; the test FETCHes the
same items from it and computes ours from :func:`kittiwake.message.parse`
and the kittiwake.imap fetch functions, serialised with
:func:`kittiwake.imap.encode.encode_bytes`. Both answers are read back
into plain values (tests/imap/imap_read.py: quoted or literal makes no
difference) and then normalised only where the difference has no meaning:

N1. case of media type, subtype, parameter names, transfer encoding and
    disposition type: all case-insensitive (RFC 2045 §5.1, §6.1, RFC 2183
    §2). Dovecot repeats them as written in BODYSTRUCTURE, we lower-case.
N2. RFC 2231 extended parameters (``name*``) are compared decoded: we
    decode them at parse time and re-encode (``utf-8''...``), Dovecot
    passes the original; the same value either way.
N3. display names are compared with RFC 2047 encoded words decoded: the
    parser stores names decoded and we re-encode non-ASCII ones, Dovecot
    passes them as written (and 8-bit names raw).
N4. white space in date, subject, message-id and in-reply-to is compared
    collapsed and stripped: unfolding (RFC 5322 §2.2.3) leaves a tab or a
    leading blank where Dovecot has a space or nothing.
N5. the source route of obsolete addresses (``@a,@b:``, RFC 5322 §4.4) is
    not kept by our parser; Dovecot sends it as the adl. Compared as NIL.
N6. placeholders for unparseable addresses: Dovecot uses the host
    ``SYNTAX_ERROR`` as well as ``MISSING_DOMAIN``; compared as one.
N7. RFC 2047 encoded words inside quoted parameter values (``name="=?utf-8?q?
    ...?="``, against RFC 2047 §5 but common) are compared decoded: the
    parser decodes them, we send the text (as RFC 2231 when non-ASCII).
N8. 8-bit header text that is not UTF-8 (legacy latin-1): Dovecot sends the
    raw octets, which are not valid in an IMAP string (RFC 9051 §4.3 and
    RFC 6855 §3 want UTF-8); we send the text converted to UTF-8 (read as
    windows-1252, the parser's fallback). Compared after the same reading.
N9. NUL octets in BODY[...] data: a literal cannot hold NUL (RFC 9051 §4.3,
    CHAR8); Dovecot sends 0x80 instead, and so do we
    (kittiwake.imap.sections.literal_safe, applied by the driver to streamed
    spans): compared after applying it to our span.

Counting differences where we follow the RFCs and Dovecot does not (kept
ours; the comparison asks Dovecot's count of a copy of our tree, and our
own count is asserted separately in tests/imap/test_fetch_bodystructure.py):

D1. text lines: Dovecot counts line ends only, so a part ``hello`` right
    before a boundary has 0 lines for it. The CRLF before a boundary
    belongs to the delimiter (RFC 2046 §5.1.1), and the part still has one
    line of text: we count it.
D2. a part that ends with a close delimiter (a multipart inside a
    multipart, or a message/rfc822 whose message is a multipart): Dovecot
    adds the CRLF after the inner close delimiter, which RFC 2046 §5.1.1
    gives to the outer boundary. Our size is 2 octets less, and our
    BODY[n] / BINARY[n] of it end at the close delimiter.

Cases compared only in part, Dovecot being wrong or arbitrary:

- ``bad-content-type``: Dovecot answers ``"" ""`` without a line count;
  RFC 2045 §5.2 says an invalid Content-Type is read as text/plain with
  charset us-ascii, which is what we send.
- ``message-global``: Dovecot 2.3 sends message/global as a basic part;
  RFC 9051 §9 ``media-message`` includes "GLOBAL", so it is
  ``body-type-msg`` with envelope and body (RFC 6532 §3.7): we send that.
  The basic fields are compared.
- ``duplicate-fields``: two From and two Subject fields (RFC 5322 §3.6
  allows one). Dovecot joins the Froms and takes the last Subject; we
  take the first of each, like most readers. Compared as such: ours is
  asserted to be the first ones.
- ``broken-from``: both make well-formed placeholders of garbage, but
  guess differently; compared in shape (every address a 4-tuple with a
  non-NIL host).
"""

from __future__ import annotations

import urllib.parse

import pytest
from fetch_corpus import BARE_LF, CORPUS
from imap_read import Parsed, read_fetch, read_value
from tests.integration.dovecot import Dovecot

from kittiwake.imap.binary import UnknownCTE, binary_bytes, binary_size
from kittiwake.imap.bodystructure import body, bodystructure
from kittiwake.imap.encode import encode_bytes
from kittiwake.imap.envelope import envelope_of_part
from kittiwake.imap.section import Partial, Section, SectionText
from kittiwake.imap.sections import literal_safe, section_bytes
from kittiwake.message import Defect, Part, decode_words, parse
from kittiwake.message.charset import decode_legacy, decode_replace

pytestmark = pytest.mark.integration

NAMES = list(CORPUS)


@pytest.fixture(scope="module")
def dovecot_answers() -> dict[str, dict[bytes, Parsed]]:
    """Dovecot's FETCH items for every corpus message (and the bare-LF one)."""
    messages = [CORPUS[n] for n in NAMES] + [BARE_LF]
    with Dovecot(messages) as dc, dc.client() as imap:
        imap.login()
        imap.select_inbox(dc.messages)
        untagged, status = imap.command("FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)")
        assert b" OK " in status
    answers = [read_fetch(r) for r in untagged if b" FETCH " in r]
    assert len(answers) == len(messages)
    out = dict(zip(NAMES, answers, strict=False))
    out["bare-lf"] = answers[-1]
    return out


def _ours(value: object) -> Parsed:
    return read_value(encode_bytes(value))  # type: ignore[arg-type]


# --- D1, D2: Dovecot's counts, applied to a copy of our tree -------------------

def dovecot_counts(root: Part, data: bytes) -> Part:
    """A copy of ``root`` with sizes and lines as Dovecot counts them (D1, D2)."""
    copy = Part.from_dict(root.to_dict(), data)
    for p in copy.walk():
        inner = p.message
        if (inner is not None and inner.is_multipart
                and Defect.NO_CLOSE_DELIMITER not in inner.defects
                and Defect.BOUNDARY_NOT_FOUND not in inner.defects
                and data[p.end : p.end + 2] == b"\r\n" and p is not copy):
            p.end += 2
        p.lines = data.count(b"\n", p.body_start, p.end)
    return copy


# --- N1-N6 ---------------------------------------------------------------------

def _text(v: bytes) -> bytes:
    """N8: octets read as UTF-8, else windows-1252 (the parser's reading)."""
    return decode_legacy(v).encode()


def _ws(v: Parsed) -> Parsed:
    return b" ".join(_text(v).split()) if isinstance(v, bytes) else v


def _name(v: Parsed) -> Parsed:
    if not isinstance(v, bytes):
        return v
    return " ".join(decode_words(decode_legacy(v)).split()).encode()


def norm_addresses(v: Parsed) -> Parsed:
    if not isinstance(v, list):
        return v
    out: list[Parsed] = []
    for a in v:
        assert isinstance(a, list) and len(a) == 4, a
        host = b"MISSING_DOMAIN" if a[3] == b"SYNTAX_ERROR" else a[3]
        out.append([_name(a[0]), None, a[2], host])
    return out


def norm_envelope(v: Parsed) -> Parsed:
    assert isinstance(v, list) and len(v) == 10, v
    return [_ws(v[0]), _ws(v[1]), *[norm_addresses(a) for a in v[2:8]], _ws(v[8]), _ws(v[9])]


def _lower(v: Parsed) -> Parsed:
    return v.lower() if isinstance(v, bytes) else v


def norm_params(v: Parsed) -> Parsed:
    if not isinstance(v, list):
        return v
    out: list[Parsed] = []
    for name, value in zip(v[::2], v[1::2], strict=True):
        assert isinstance(name, bytes) and isinstance(value, bytes)
        name = name.lower()
        if name.endswith(b"*") and value.count(b"'") >= 2:
            charset, _lang, text = value.split(b"'", 2)
            decoded = decode_replace(urllib.parse.unquote_to_bytes(text), charset.decode())
            name, value = name[:-1], decoded.encode()
        elif b"=?" in value:  # N7
            value = decode_words(decode_legacy(value)).encode()
        out += [name, value]
    return out


def _norm_disposition(v: Parsed) -> Parsed:
    if not isinstance(v, list):
        return v
    return [_lower(v[0]), norm_params(v[1])]


def norm_body(v: Parsed) -> Parsed:
    """N1, N2 (and N3-N6 inside encapsulated envelopes) over a body structure."""
    assert isinstance(v, list) and v, v
    if isinstance(v[0], list):  # multipart: bodies, subtype, extension data
        n = next(i for i, x in enumerate(v) if not isinstance(x, list))
        out: list[Parsed] = [norm_body(x) for x in v[:n]]
        out.append(_lower(v[n]))
        ext = v[n + 1 :]
        if ext:
            out.append(norm_params(ext[0]))
            if len(ext) > 1:
                out.append(_norm_disposition(ext[1]))
            out += ext[2:]
        return out
    out = [_lower(v[0]), _lower(v[1]), norm_params(v[2]), v[3], v[4], _lower(v[5]), v[6]]
    rest = v[7:]
    is_msg = _lower(v[0]) == b"message" and _lower(v[1]) in (b"rfc822", b"global") \
        and len(rest) >= 3 and isinstance(rest[0], list)
    if is_msg:
        out += [norm_envelope(rest[0]), norm_body(rest[1]), rest[2]]
        rest = rest[3:]
    elif _lower(v[0]) == b"text":
        out.append(rest[0])
        rest = rest[1:]
    if rest:
        out.append(rest[0])  # md5
        if len(rest) > 1:
            out.append(_norm_disposition(rest[1]))
        out += rest[2:]
    return out


SKIP_BODY = {"bad-content-type", "message-global"}
SKIP_ENVELOPE = {"duplicate-fields", "broken-from"}


@pytest.mark.parametrize("name", [n for n in NAMES if n not in SKIP_BODY])
def test_bodystructure_and_body_match_dovecot(dovecot_answers, name: str) -> None:
    data = CORPUS[name]
    tree = dovecot_counts(parse(data), data)
    theirs = dovecot_answers[name]
    assert norm_body(_ours(bodystructure(tree))) == norm_body(theirs[b"BODYSTRUCTURE"])
    assert norm_body(_ours(body(tree))) == norm_body(theirs[b"BODY"])


@pytest.mark.parametrize("name", [n for n in NAMES if n not in SKIP_ENVELOPE])
def test_envelope_matches_dovecot(dovecot_answers, name: str) -> None:
    ours = _ours(list(envelope_of_part(parse(CORPUS[name]))))
    assert norm_envelope(ours) == norm_envelope(dovecot_answers[name][b"ENVELOPE"])


def test_bad_content_type_is_text_plain_unlike_dovecot(dovecot_answers) -> None:
    theirs = dovecot_answers["bad-content-type"][b"BODYSTRUCTURE"]
    assert isinstance(theirs, list) and theirs[:2] == [b"", b""]  # Dovecot's answer
    ours = _ours(bodystructure(parse(CORPUS["bad-content-type"])))
    assert ours[:3] == [b"text", b"plain", [b"charset", b"us-ascii"]]  # RFC 2045 §5.2
    assert ours[6:8] == [theirs[6], 1]  # same size, plus the line count of body-type-text


def test_message_global_has_envelope_and_body_unlike_dovecot(dovecot_answers) -> None:
    theirs = dovecot_answers["message-global"][b"BODYSTRUCTURE"]
    assert isinstance(theirs, list) and len(theirs) == 11  # basic: no envelope, no body
    ours = _ours(bodystructure(parse(CORPUS["message-global"])))
    assert isinstance(ours, list)
    assert norm_body(ours[:7]) == norm_body(theirs[:7])
    env, inner, lines = ours[7], ours[8], ours[9]
    assert norm_envelope(env)[1] == "Grüße".encode()
    assert norm_envelope(env)[2] == [["Jörg".encode(), None, b"joerg", b"x.test"]]
    assert isinstance(inner, list) and inner[:2] == [b"text", b"plain"]
    assert lines == 4


def test_duplicate_fields_take_the_first(dovecot_answers) -> None:
    theirs = norm_envelope(dovecot_answers["duplicate-fields"][b"ENVELOPE"])
    ours = norm_envelope(_ours(list(envelope_of_part(parse(CORPUS["duplicate-fields"])))))
    assert theirs[1] == b"second subject" and len(theirs[2]) == 2  # type: ignore[arg-type]
    assert ours[1] == b"first subject"
    assert ours[2:5] == [[[None, None, b"first", b"x.test"]]] * 3


def test_broken_addresses_are_well_formed_like_dovecot(dovecot_answers) -> None:
    theirs = dovecot_answers["broken-from"][b"ENVELOPE"]
    ours = _ours(list(envelope_of_part(parse(CORPUS["broken-from"]))))
    for env in (theirs, ours):
        assert isinstance(env, list) and len(env) == 10
        for field in env[2:8]:
            for addr in field or ():
                assert isinstance(addr, list) and len(addr) == 4 and addr[3] is not None
    assert norm_envelope(ours)[5] == norm_envelope(theirs)[5]  # To: a@, @b, <c>


def test_bare_lf_message_matches_dovecot_structure(dovecot_answers) -> None:
    """A bare-LF file: Dovecot reports sizes as if every LF were CRLF; the
    structure, parameters and line counts are the same."""
    tree = dovecot_counts(parse(BARE_LF), BARE_LF)

    def sizes_out(v: Parsed) -> Parsed:
        if isinstance(v, list):
            if v and isinstance(v[0], bytes) and len(v) > 6 and isinstance(v[6], int):
                v = [*v[:6], None, *v[7:]]
            return [sizes_out(x) for x in v]
        return v

    ours = sizes_out(norm_body(_ours(bodystructure(tree))))
    theirs = sizes_out(norm_body(dovecot_answers["bare-lf"][b"BODYSTRUCTURE"]))
    assert ours == theirs


# --- BODY[section] and BINARY[section] -------------------------------------------

def part_paths(root: Part) -> list[tuple[int, ...]]:
    """Every part number of the message ``root`` (RFC 9051 §6.4.5), depth first."""
    out: list[tuple[int, ...]] = []

    def in_message(m: Part, prefix: tuple[int, ...]) -> None:
        # A multipart message's parts are 1..n; any other message has one part, 1.
        if m.is_multipart:
            for i, c in enumerate(m.parts, 1):
                part(c, (*prefix, i))
        else:
            part(m, (*prefix, 1), body_of_message=True)

    def part(p: Part, nums: tuple[int, ...], body_of_message: bool = False) -> None:
        out.append(nums)
        if p.is_multipart and not body_of_message:
            for i, c in enumerate(p.parts, 1):
                part(c, (*nums, i))
        elif p.message is not None and not body_of_message:
            in_message(p.message, nums)

    in_message(root, ())
    return out


def _spec(nums: tuple[int, ...], text: str = "") -> str:
    return ".".join([*map(str, nums)] + ([text] if text else []))


def _sections(root: Part) -> list[Section]:
    fields = ("FROM", "SUBJECT", "CONTENT-TYPE")
    out = [Section(), Section(text=SectionText.HEADER), Section(text=SectionText.TEXT),
           Section(text=SectionText.HEADER_FIELDS, fields=fields),
           Section(text=SectionText.HEADER_FIELDS_NOT, fields=fields)]
    for nums in part_paths(root):
        out += [Section(nums), Section(nums, SectionText.MIME)]
        p = root.section(list(nums))
        if p is not None and p.message is not None:
            out += [Section(nums, SectionText.HEADER), Section(nums, SectionText.TEXT),
                    Section(nums, SectionText.HEADER_FIELDS, fields)]
    return out


def _fetch_name(s: Section) -> str:
    return s.spec()


def _dovecot_sizes_differ(root: Part, data: bytes, s: Section) -> bool:
    """D2: the section ends with the close delimiter of a multipart (its own, or
    its encapsulated message's), which Dovecot extends by the CRLF that
    belongs to the enclosing delimiter."""
    p = root.section(list(s.part)) if s.part else root
    if p is None or s.text is SectionText.MIME or s.text in (
            SectionText.HEADER, SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        return False
    if p is root or data[p.end : p.end + 1] not in (b"\r", b"\n"):
        return False
    return any(q.is_multipart and q.end == p.end for q in p.walk())


@pytest.fixture(scope="module")
def dovecot_sections() -> dict[str, dict[bytes, Parsed]]:
    """Dovecot's BODY[section] answers for every part of every corpus message."""
    out: dict[str, dict[bytes, Parsed]] = {}
    messages = [CORPUS[n] for n in NAMES]
    with Dovecot(messages) as dc, dc.client() as imap:
        imap.login()
        imap.select_inbox(dc.messages)
        for i, name in enumerate(NAMES, 1):
            root = parse(CORPUS[name])
            items = " ".join(f"BODY.PEEK[{s.spec()}]" for s in _sections(root))
            items += "".join(f" BODY.PEEK[{_spec(n)}]<1.7>" for n in part_paths(root))
            untagged, status = imap.command(f"FETCH {i} ({items} BODY.PEEK[]<3.10>)")
            assert b" OK " in status, status
            out[name] = read_fetch(next(r for r in untagged if b" FETCH " in r))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_body_sections_match_dovecot(dovecot_sections, name: str) -> None:
    data = CORPUS[name]
    root = parse(data)
    theirs = dovecot_sections[name]
    compared = 0
    for s in _sections(root):
        if name == "message-global" and s.part and s.text is not None:
            continue  # Dovecot does not parse message/global (see the top)
        ours = literal_safe(section_bytes(root, s, data))  # N9
        want = theirs[f"BODY[{s.spec()}]".encode()]
        if _dovecot_sizes_differ(root, data, s):  # D2
            assert want in (ours + b"\r\n", ours), s
            continue
        if name == "header-only" and s.text is SectionText.HEADER_FIELDS:
            # RFC 9051 §6.4.5: the blank line is in all header fetches "except in the
            # case of a message which has no body and no blank line"; Dovecot adds one
            # to HEADER.FIELDS anyway (not to HEADER or HEADER.FIELDS.NOT).
            assert want == ours + b"\r\n"
            continue
        assert ours == want, s
        compared += 1
    assert section_bytes(root, Section(), data, Partial(3, 10)) == theirs[b"BODY[]<3>"]
    for nums in part_paths(root):  # <partial> of every part, nested ones included
        ours = literal_safe(section_bytes(root, Section(nums), data, Partial(1, 7)))
        want = theirs[f"BODY[{_spec(nums)}]<1>".encode()]
        if not _dovecot_sizes_differ(root, data, Section(nums)) and not (
                name == "message-global" and len(nums) > 1):
            assert ours == want, nums
    assert compared >= 5


@pytest.fixture(scope="module")
def dovecot_binary() -> dict[tuple[str, tuple[int, ...]], tuple[Parsed, Parsed, bytes]]:
    """Dovecot's (BINARY, BINARY.SIZE, status line) for each leaf part of the corpus."""
    out: dict[tuple[str, tuple[int, ...]], tuple[Parsed, Parsed, bytes]] = {}
    with Dovecot([CORPUS[n] for n in NAMES]) as dc, dc.client() as imap:
        imap.login()
        imap.select_inbox(dc.messages)
        for i, name in enumerate(NAMES, 1):
            for nums in [(), *part_paths(parse(CORPUS[name]))]:
                spec = _spec(nums)
                untagged, status = imap.command(
                    f"FETCH {i} (BINARY.PEEK[{spec}] BINARY.SIZE[{spec}])")
                got = next((read_fetch(r) for r in untagged if b" FETCH " in r), {})
                out[name, nums] = (got.get(f"BINARY[{spec}]".encode()),
                                   got.get(f"BINARY.SIZE[{spec}]".encode()), status)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_binary_matches_dovecot(dovecot_binary, name: str) -> None:
    """Equal where Dovecot answers; where it fails the command with [PARSE] on
    damaged base64/QP, we still decode what can be decoded (never an error,
    RFC 3516 §4 does not ask for one); [UNKNOWN-CTE] where Dovecot says so."""
    data = CORPUS[name]
    root = parse(data)
    encoded = any(p.encoding not in ("7bit", "8bit", "binary") for p in root.walk())
    for nums in [(), *part_paths(root)]:
        content, size, status = dovecot_binary[name, nums]
        if not nums and encoded:
            # BINARY[]: Dovecot rewrites the whole message with every part decoded;
            # we send the message as stored (it has no transfer encoding of its
            # own, RFC 3516 §4). Compared only where nothing is encoded.
            assert binary_bytes(root, nums, data) == data
            continue
        target = root.section(list(nums)) if nums else root
        if nums and target is not None and (target.is_multipart or target.is_message):
            # Dovecot decodes every part inside a multipart or message section and
            # rewrites their headers; RFC 3516 §4 removes the encoding "specified in
            # the corresponding Content-Transfer-Encoding header field", the
            # section's own: we do that only (a base64 message/rfc822 is decoded,
            # where Dovecot sends it still encoded). Leaf parts are compared.
            assert isinstance(binary_bytes(root, nums, data), bytes)
            continue
        ours = binary_bytes(root, nums, data)
        our_size = binary_size(root, nums, lambda s: data[s.offset : s.end])
        if b"[UNKNOWN-CTE]" in status:
            assert isinstance(ours, UnknownCTE) and isinstance(our_size, UnknownCTE), nums
            continue
        assert not isinstance(ours, UnknownCTE), nums
        if b"[PARSE]" in status:
            assert isinstance(ours, bytes)
            continue
        assert b" OK " in status, status
        if _dovecot_sizes_differ(root, data, Section(nums)):  # D2
            assert content in (ours, ours + b"\r\n")
            continue
        assert ours == content, nums
        assert our_size == size == len(ours), nums


def test_bare_lf_sections_and_envelope_match_dovecot() -> None:
    """Bare-LF files are served as stored (the store keeps what it received);
    Dovecot turns every LF into CRLF on output. Compared after doing the same
    to ours; the envelope is the same."""
    root = parse(BARE_LF)
    sections = _sections(root)
    items = " ".join(f"BODY.PEEK[{s.spec()}]" for s in sections)
    with Dovecot([BARE_LF]) as dc, dc.client() as imap:
        imap.login()
        imap.select_inbox(dc.messages)
        untagged, status = imap.command(f"FETCH 1 (ENVELOPE {items})")
    assert b" OK " in status
    theirs = read_fetch(next(r for r in untagged if b" FETCH " in r))
    assert norm_envelope(_ours(list(envelope_of_part(root)))) == \
        norm_envelope(theirs[b"ENVELOPE"])
    for s in sections:
        ours = section_bytes(root, s, BARE_LF)
        assert b"\r" not in ours
        want = theirs[f"BODY[{s.spec()}]".encode()]
        if _dovecot_sizes_differ(root, BARE_LF, s):  # D2
            want = want.removesuffix(b"\r\n")
        assert ours.replace(b"\n", b"\r\n") == want, s
