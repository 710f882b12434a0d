"""GUFU: graph-based fingerprint update. `study` holds the stages, `run` the period-by-period
protocol, `variants` one (variant, seed) through the periods; docs/methods/gufu.md describes it."""
