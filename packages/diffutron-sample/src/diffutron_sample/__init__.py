"""diffutron-sample: generation with masked diffusion language models.

The LLaDA-style sampler, fast decoding, infilling and chat arrive with the Generation issue; this
release only establishes the package. It depends on diffutron-core, torch and transformers alone.
"""

from importlib.metadata import version

__version__ = version("diffutron-sample")

__all__ = ["__version__"]
