"""IMAP protocol core, sans-I/O (RFC 9051, RFC 3501 and extensions)."""
