"""The IMAP server: asyncio driver, session, selected-mailbox view."""
