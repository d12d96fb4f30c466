"""Stored credentials: derivation (checked against gsasl --mkpasswd), storage form, checks."""

from __future__ import annotations

import base64
import hmac
import json
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sasl_helpers import credentials

from kittiwake.sasl import (
    Credentials,
    CredentialsFormatError,
    PrecisError,
    derive_credentials,
    verify_password,
)
from kittiwake.sasl.credentials import cram_md5_digest, cram_md5_keys


@pytest.mark.integration
@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
@pytest.mark.parametrize("password", ["pencil", "pässwörd with spaces"])
def test_scram_keys_match_gsasl_mkpasswd(mech: str, password: str) -> None:
    gsasl = shutil.which("gsasl")
    assert gsasl, "gsasl (Debian package gsasl) is not installed"
    salt = b"0123456789abcdef"
    creds = derive_credentials(password, random_bytes=lambda n: salt)
    keys = creds.scram_sha1 if mech == "SCRAM-SHA-1" else creds.scram_sha256
    assert keys is not None
    out = subprocess.run(
        [
            gsasl,
            "--mkpasswd",
            "-m",
            mech,
            "-p",
            password,
            "--salt",
            base64.b64encode(salt).decode(),
            "--iteration-count",
            str(keys.iterations),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    # {mech}count,salt,stored-key,server-key
    count, b64salt, stored, server = out.split("}", 1)[1].split(",")
    assert int(count) == keys.iterations
    assert base64.b64decode(b64salt) == keys.salt
    assert base64.b64decode(stored) == keys.stored_key
    assert base64.b64decode(server) == keys.server_key


def test_defaults_and_fresh_salts() -> None:
    a, b = derive_credentials("pencil"), derive_credentials("pencil")
    assert a.scram_sha1 is not None and a.scram_sha1.iterations == 4096
    assert a.scram_sha256.iterations == 10000
    assert a.scram_sha256.salt != b.scram_sha256.salt
    assert a.scram_sha256.stored_key != b.scram_sha256.stored_key


def test_iteration_count_minimum_and_configurable() -> None:
    with pytest.raises(ValueError):
        derive_credentials("pencil", iterations_sha256=1000)
    creds = derive_credentials("pencil", iterations_sha256=5000, scram_sha1=False, cram_md5=False)
    assert creds.scram_sha256.iterations == 5000
    assert creds.scram_sha1 is None and creds.cram_md5 is None


def test_json_round_trip_and_no_password_inside() -> None:
    creds = credentials()
    text = creds.to_json()
    assert "pencil" not in text
    assert Credentials.from_json(text) == creds
    assert Credentials.from_dict(json.loads(text)) == creds
    assert json.loads(text)["v"] == 1


@pytest.mark.parametrize(
    "doc",
    [
        "[]",
        "not json",
        '{"v": 2}',
        '{"v": 1}',
        '{"v": 1, "scram_sha256": {"salt": "AA==", "iterations": 4096,'
        ' "stored_key": "!!", "server_key": "AA=="}}',
        '{"v": 1, "scram_sha256": {"salt": "AA==", "iterations": "x",'
        ' "stored_key": "AA==", "server_key": "AA=="}}',
        '{"v": 1, "scram_sha256": {"salt": "AA==", "iterations": 4096,'
        ' "stored_key": "AA==", "server_key": "AA=="}}',  # keys too short
    ],
)
def test_bad_stored_form(doc: str) -> None:
    with pytest.raises(CredentialsFormatError):
        Credentials.from_json(doc)


def test_verify_password() -> None:
    creds = credentials()
    assert verify_password(creds, "pencil")
    assert not verify_password(creds, "pencil ")
    assert not verify_password(creds, "Pencil")
    assert not verify_password(creds, "pen\x00cil")  # disallowed by OpaqueString


def test_verify_password_prepares_like_derive() -> None:
    creds = derive_credentials("Cafe\u0301\u00a0au lait", iterations_sha256=4096)
    assert verify_password(creds, "Caf\u00e9 au lait")


def test_derive_rejects_disallowed_password() -> None:
    with pytest.raises(PrecisError):
        derive_credentials("\x07bell")


@settings(max_examples=60, deadline=None)
@given(password=st.binary(min_size=1, max_size=150), challenge=st.binary(max_size=200))
def test_cram_md5_states_finish_hmac(password: bytes, challenge: bytes) -> None:
    # Including keys longer than the 64-byte block, which HMAC hashes first.
    keys = cram_md5_keys(password)
    expected = hmac.new(password, challenge, "md5").digest()
    assert cram_md5_digest(keys, challenge) == expected
