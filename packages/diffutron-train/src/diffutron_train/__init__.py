"""diffutron-train: LoRA continual pre-training and MDLM instruction tuning for Diffutron.

CPT and SFT arrive with the Training issue; this release only establishes the package.
"""

from importlib.metadata import version

__version__ = version("diffutron-train")

__all__ = ["__version__"]
