"""Where inbound mail arrives from: an IMAP mailbox (imap), ESP webhooks (webhooks); the MTA
pipe is the ingest_mail management command."""
