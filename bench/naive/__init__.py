"""The pixel written the ordinary Django way, as a baseline the fast path is measured against.

Bench-only: nothing in the application imports it.
"""
