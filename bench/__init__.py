"""Benchmarks (`make bench` runs each; README's Benchmarks section says what each measures).

Their shared setup: env (the bench's database, Redis and Django start-up), data (users, rows
generated in SQL, ANALYZE), measure (timing pages, best-of runs, results files).
"""
