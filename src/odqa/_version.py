"""odqa's version: a leaf, so that no room imports the package face for it."""

__version__ = "0.1.0"
