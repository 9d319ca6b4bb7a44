"""Data: manifests, preparation of crops, masks, demo data and torch datasets."""
