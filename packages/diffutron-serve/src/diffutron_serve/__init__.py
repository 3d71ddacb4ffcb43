"""diffutron-serve: an OpenAI-compatible HTTP server for masked diffusion language models.

* :func:`create_app` - the FastAPI app for a model folder: ``/v1/models``,
  ``/v1/chat/completions`` and ``/v1/completions`` (``suffix`` fills the gap between prompt and
  suffix), streamed as Server-Sent Events or not, with the diffusion settings as extra fields and
  a live denoising stream (``canvas: true``); the page at ``/`` shows each answer denoising.
* One engine loop (:class:`~diffutron_serve.worker.Worker`) owns the model and batches the
  requests of every connection step by step (diffutron-sample's ``Engine``); a full queue answers
  429, a client that leaves frees its slot at the next step.
* ``/health`` and ``/ready`` for probes; the model loads in the background while they answer.
* :func:`serve` - run it with uvicorn until SIGTERM or SIGINT, then drain (finish what is in
  flight, refuse the rest with 503) and exit; :func:`serve_in_thread` - in a background thread of
  this process (a notebook, a test, a benchmark).
"""

from importlib.metadata import version

from diffutron_serve.app import create_app
from diffutron_serve.background import Running, serve_in_thread
from diffutron_serve.errors import APIError
from diffutron_serve.lifecycle import serve

__version__ = version("diffutron-serve")


__all__ = ["APIError", "Running", "__version__", "create_app", "serve", "serve_in_thread"]
