"""Certificates from an ACME authority (RFC 8555) for pre-generated host keys."""

from kittiwake.acme.paths import account_uri

__all__ = ["account_uri"]
