"""Adapters to daphne and Twisted internals, each guarded, each with a plain fallback."""
