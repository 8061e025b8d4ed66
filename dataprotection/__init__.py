"""Data protection: forgetting and exporting a person, retention, and the audit trail's pages.

It sits above every app that holds personal data (crm, tracking, inbound, campaigns, reports),
because forgetting or exporting a person reads and changes all of them.
"""
