"""tdpcr: a Jupyter-first reproduction of TDP-CR (joint SAR-optical cloud removal and segmentation)."""

__version__ = "0.1.0"
