"""Demo data for `make run`: the records (seed_demo) and a month of their email
(seed_demo_activity).

An app at the top of the stack: it uses every other app to build what a newcomer sees first.
"""
