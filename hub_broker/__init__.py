"""Everything the hub operator runs: submission, the Celery reducer, the store, pooling, reports.

Imports ``omop`` only, never ``trust_worker``.
"""
