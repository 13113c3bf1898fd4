"""Everything a hospital runs: database set-up, the query pipeline, the Celery worker, audit.

Imports ``omop`` only, never ``hub_broker``: a trust installs and runs this side without hub code.
"""
