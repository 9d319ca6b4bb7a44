"""Building blocks shared by several model families (no family imports another family)."""
