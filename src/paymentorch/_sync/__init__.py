"""Deprecated: the blocking twin is public as ``paymentorch.sync``.

These modules only re-export it under its old private names, and go in a later release.
"""
