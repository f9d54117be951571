"""Metrics: functional definitions, the streaming accumulator and the tidy result frame."""
