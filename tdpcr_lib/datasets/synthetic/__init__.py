"""datasets.synthetic."""
