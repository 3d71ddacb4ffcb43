"""diffutron-cli: the command-line apps of Diffutron.

Thin click commands that parse options (CLI > environment > ``--config`` YAML > default) and call
one library entry point each. Nothing here imports torch until a command runs.
"""

from importlib.metadata import version

__version__ = version("diffutron-cli")

__all__ = ["__version__"]
