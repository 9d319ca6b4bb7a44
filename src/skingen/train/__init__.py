"""The generic training loop and its helpers (EMA)."""
