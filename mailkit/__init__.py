"""The mail toolkit: pure functions that instrument and show email, with no models and no app.

tokens (per-recipient signed tokens, VERP), rewrite (link rewriting, the pixel, HTML to text),
merge (merge fields) and display (sanitising a stored body for the app). crm, tracking,
inbound and campaigns use it from below; it imports none of them, nor Django's models, so the
tracking fast path and the tests load it cheaply (tokens.configured_keys reads Django's settings
when it is called, not on import).
"""
