"""zstream: streaming NMF redshifts for reduced spectra."""

__version__ = "0.1.0"
