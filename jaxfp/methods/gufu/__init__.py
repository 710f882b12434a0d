"""GUFU: graph-based fingerprint update (the model, its variants, the period-by-period protocol)."""
