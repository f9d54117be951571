"""evaluation.ablations."""
