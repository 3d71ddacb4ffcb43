"""diffutron-data: Turkish corpora and instruction sets for Diffutron.

The corpus builder, instruction-set readers, chat formatting and embedded sample data arrive with
the Data issue; this release only establishes the package.
"""

from importlib.metadata import version

__version__ = version("diffutron-data")

__all__ = ["__version__"]
