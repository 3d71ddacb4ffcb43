"""diffutron-eval: perplexity and the CETVEL Turkish benchmark subset for Diffutron.

Perplexity and the lm-eval adapter arrive with the Evaluation issue; this release only establishes
the package.
"""

from importlib.metadata import version

__version__ = version("diffutron-eval")

__all__ = ["__version__"]
