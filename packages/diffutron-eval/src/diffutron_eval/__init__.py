"""diffutron-eval: evaluate masked diffusion language models.

* :func:`perplexity` - the paper's masked-token pseudo-perplexity (or the MDLM bound), seeded and
  batched; :func:`read_texts` reads the texts from files or the Hub.
* :class:`DiffutronLM` - the lm-eval model ``diffutron`` (registered on import): log-likelihoods by
  the masked-diffusion Monte-Carlo bound, generation by diffutron-sample.
"""

from importlib.metadata import version

from diffutron_eval.errors import EvalError
from diffutron_eval.lm import DiffutronLM
from diffutron_eval.perplexity import PerplexityResult, perplexity
from diffutron_eval.texts import BILKENT_WRITINGS, read_texts

__version__ = version("diffutron-eval")

__all__ = [
    "BILKENT_WRITINGS",
    "DiffutronLM",
    "EvalError",
    "PerplexityResult",
    "__version__",
    "perplexity",
    "read_texts",
]
