"""dataprotection's Celery tasks: thin wrappers over its services."""
