"""Report exchange at server level: receiving reports sent to our report addresses,
storing them, and sending our own daily reports (TLSRPT: ``tlsrpt_*`` modules).
"""
