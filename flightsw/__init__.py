"""Flight software of one orbital AI data-centre node (see README.md)."""

__version__ = "0.1.0"
