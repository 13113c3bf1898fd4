"""Benchmarks of omop-federation against local federations: ``python -m benchmarks`` (see ``__main__``).

Not part of the installed product: run from the repository root. Every suite starts (or reuses) its own
stack with ``omopfed.stack.up`` in a temporary directory and stops it afterwards.
"""
