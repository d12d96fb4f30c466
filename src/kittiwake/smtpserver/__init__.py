"""The SMTP server: MX (port 25) and submission (587, 465), a driver around kittiwake.smtp."""
