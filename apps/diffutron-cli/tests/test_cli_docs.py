from pathlib import Path

from diffutron_cli.cli_docs import render

CLI_MD = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def test_docs_cli_md_is_current():
    expected = render()
    assert "## `diffutron-train cpt`" in expected and "## `diffutron demo`" in expected
    assert CLI_MD.read_text(encoding="utf-8") == expected, (
        "docs/cli.md is out of date: uv run python -m diffutron_cli.cli_docs > docs/cli.md"
    )
