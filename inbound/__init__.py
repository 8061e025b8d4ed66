"""Inbound mail: what comes back after a send (bounces, complaints, auto-replies, replies).

parsing/ reads raw messages (pure: no Django), sources/ is where they arrive from, processing
matches one to the copy it answers, effects applies what it means, esp handles ESP events.
"""
