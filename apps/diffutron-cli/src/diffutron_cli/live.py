"""The live view: the canvas redrawn in place as it is unmasked (``--show-steps``, the demo)."""

from __future__ import annotations


class LiveCanvas:
    """A sampler callback that redraws the first canvas row in place (rich): its last ``tail``
    positions (the generated part), or all of it when ``tail`` is None."""

    def __init__(self, tokenizer, tail: int | None = None):
        from rich.console import Console
        from rich.live import Live

        self.tokenizer, self.tail = tokenizer, tail
        self.live = Live(console=Console(stderr=True), auto_refresh=False, transient=True)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def __call__(self, step: int, canvas) -> None:
        from rich.text import Text

        from diffutron_sample import render_canvas

        row = canvas[0] if self.tail is None else canvas[0, -self.tail :]
        shown = render_canvas(self.tokenizer, row)
        self.live.update(Text(f"step {step}\n", style="dim") + Text(shown), refresh=True)
