import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    exec(compile(code, str(README), "exec"), {})
    assert capsys.readouterr().out.splitlines() == ["torch.Size([1, 20]) 16", "True"]
