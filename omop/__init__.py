"""Shared core of omop-federation: what a trust and the hub both need, and nothing else.

Neither ``trust_worker`` nor ``hub_broker`` is imported from here; they meet only in the messages,
policy and disclosure rules defined in this package.
"""

__version__ = "0.1.0"
