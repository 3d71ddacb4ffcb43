import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys, monkeypatch):
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    exec(compile(code, str(README), "exec"), {})
    assert capsys.readouterr().out.splitlines()[-2:] == [
        "trainable parameters: 54,067,200 of 361,853,440 (14.94%)",
        "model",
    ]
