"""diffutron-serve: an OpenAI-compatible HTTP server for masked diffusion language models.

* :func:`create_app` - the FastAPI app for a model folder: ``/v1/models``,
  ``/v1/chat/completions`` and ``/v1/completions`` (``suffix`` fills the gap between prompt and
  suffix), streamed as Server-Sent Events or not, with the diffusion settings as extra fields and
  a live denoising stream (``canvas: true``); the page at ``/`` shows each answer denoising.
* One engine loop (:class:`~diffutron_serve.worker.Worker`) owns the model and batches the
  requests of every connection step by step (diffutron-sample's ``Engine``); a full queue answers
  429, a client that leaves frees its slot at the next step.
* :func:`serve` - run it with uvicorn; :func:`serve_in_thread` - in a background thread of this
  process (a notebook, a test, a benchmark).
"""

from importlib.metadata import version
from typing import Any

from diffutron_serve.app import create_app
from diffutron_serve.background import Running, serve_in_thread
from diffutron_serve.errors import APIError

__version__ = version("diffutron-serve")


def serve(model_dir: str, *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``model_dir`` on ``host:port`` (127.0.0.1 unless told otherwise) until stopped."""
    import uvicorn

    uvicorn.run(create_app(model_dir, **options), host=host, port=port, log_level="info")


__all__ = ["APIError", "Running", "__version__", "create_app", "serve", "serve_in_thread"]
