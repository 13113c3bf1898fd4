"""The ``omopfed`` command: one entry point that mounts the trust, hub, keys, stack and demo commands.

This package is the thin shell on top of ``trust_worker`` and ``hub_broker``; it is the only place that
imports both, and it imports each lazily-mounted side only when it is installed.
"""
