"""Data files that ship with the package: the land-cover legend and the normalisation."""
