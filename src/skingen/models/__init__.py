"""Generative model families; each is registered by name in :mod:`skingen.registry`."""
