"""diffutron-eval: evaluate masked diffusion language models.

* :func:`perplexity` - the paper's masked-token pseudo-perplexity (or the MDLM bound), seeded and
  batched; :func:`read_texts` reads the texts from files or the Hub.
* :func:`sentence_scores` - a sentence's log-likelihood for grammatical minimal pairs, three
  ways (``pll``, TurBLiMP's ``pll-word-l2r``, the ``elbo`` bound); :func:`pair_accuracy`.
* :class:`DiffutronLM` - the lm-eval model ``diffutron`` (registered on import): log-likelihoods by
  the masked-diffusion Monte-Carlo bound, generation by diffutron-sample.
* :func:`run_bench` - lm-eval tasks (the CETVEL subset) over models and baselines, with a report.
* :func:`score_task` - exact match of graded tasks (plain rows) beside their trivial baseline.
* :func:`start_processes` - this process's rank and device under ``torchrun`` / ``accelerate
  launch`` (:class:`Processes`); :func:`perplexity`, :class:`DiffutronLM` and :func:`run_bench`
  share their work across the processes, and only rank 0 writes.
"""

from importlib.metadata import version

from diffutron_eval.bench import run_bench
from diffutron_eval.distributed import Processes, start_processes
from diffutron_eval.errors import EvalError
from diffutron_eval.lm import DiffutronLM
from diffutron_eval.pairs import METHODS, pair_accuracy, sentence_scores
from diffutron_eval.perplexity import PerplexityResult, perplexity
from diffutron_eval.synthetic import BASELINES, score_task
from diffutron_eval.tasks import parse_data_files, task_configs, task_manager, tasks_path
from diffutron_eval.texts import BILKENT_WRITINGS, read_texts

__version__ = version("diffutron-eval")

__all__ = [
    "BASELINES",
    "BILKENT_WRITINGS",
    "METHODS",
    "DiffutronLM",
    "EvalError",
    "PerplexityResult",
    "Processes",
    "__version__",
    "pair_accuracy",
    "parse_data_files",
    "perplexity",
    "read_texts",
    "run_bench",
    "score_task",
    "sentence_scores",
    "start_processes",
    "task_configs",
    "task_manager",
    "tasks_path",
]
