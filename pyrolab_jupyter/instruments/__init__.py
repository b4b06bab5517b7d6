"""Instruments shipped with the package: simulated ones (``sim``) and a PyVISA/SCPI base (``visa``)."""
