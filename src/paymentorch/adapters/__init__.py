"""Backends and the local cache. Drivers are imported lazily by the adapter that needs them."""
