"""The bad-input matrix's world: a folder of a user's files (good, bad and precious) and tiny
models, and the one check every case makes."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("DIFFUTRON_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def collectable():
    """A sampling command run in-process freezes the heap once its model is loaded, as in a
    process of its own (``diffutron_sample.freeze_heap``); it is given back after each test, so
    that the tests' models can be collected."""
    yield
    gc.unfreeze()


XCOPA = {
    "premise": "Adam kolunu kırdı.",
    "choice1": "Hastaneye gitti.",
    "choice2": "Sinemaya gitti.",
    "question": "effect",
    "label": 0,
}
FILES: dict[str, bytes] = {
    "prompts.jsonl": b'{"prompt": "Merhaba"}\n',
    "prompts-empty.jsonl": b"",
    "prompts-bad.jsonl": b'{"oops": 1}\nnot json\n[1, 2]\n',
    "prompts-latin1.jsonl": '{"prompt": "Günaydın"}\n'.encode("cp1254"),
    "prompts-messages.jsonl": b'{"messages": [{"role": "assistant", "content": "x"}]}\n',
    "out.jsonl": b"precious results\n",
    "notes.txt": b"precious notes\n",
    "corpus.txt": "Bugün hava çok güzel.\nKedi süt içer.\n".encode(),
    "empty.txt": b"",
    "blank.txt": b"\n  \n\n",
    "huge-line.txt": b"a" * 40_000 + b"\n",
    "latin1.txt": "Güzel bir gün.\nÇok güzel.\n".encode("cp1254"),
    "table.csv": b"a,b\n1,2\n",
    "latin1.csv": "text\nGüzel\n".encode("cp1254"),
    "numbers.jsonl": b'{"text": 5}\n',
    "surrogate.jsonl": b'{"text": "Merhaba \\ud800"}\n',
    "nocolumn.jsonl": b'{"body": "Merhaba"}\n',
    "sft-unknown.jsonl": b'{"question": "Neden?", "answer": "Evet."}\n',
    "sft-bad.jsonl": b'{"instruction": "", "output": ""}\n{"instruction": "Selam", "output": 3}\n',
    "sft-latin1.jsonl": '{"instruction": "Günaydın", "output": "Sana da"}\n'.encode("cp1254"),
    "xcopa.jsonl": (json.dumps(XCOPA, ensure_ascii=False) + "\n").encode(),
    "xcopa-textlabel.jsonl": (
        json.dumps({**XCOPA, "label": "1"}, ensure_ascii=False) + "\n"
    ).encode(),
    "xcopa-latin1.jsonl": (json.dumps(XCOPA, ensure_ascii=False) + "\n").encode("cp1254"),
    "xcopa-empty.jsonl": b"",
    "xcopa-nocolumns.jsonl": b'{"premise": "Adam uyudu."}\n',
    "irony-evet.jsonl": '{"text": "Ne güzel bir gün!", "label": "Evet"}\n'.encode(),
    "sts-words.csv": b"score,sentence1_tr,sentence2_tr\nhigh,Kedi uyur.,Kedi uyuyor.\n",
    "config-unknown.yaml": b"temprature: 0.5\n",
    "config-sample-typo.yaml": b"generate:\n  temprature: 0.5\n",
    "config-train-unknown.yaml": b"lrr: 0.1\n",
    "config-nan.yaml": b"lr: .nan\n",
    "config-broken.yaml": b"lr: [unclosed\n",
    "config-latin1.yaml": "seed: 1 # güzel\n".encode("cp1254"),
    "config-group-typo.yaml": b"cptt:\n  lr: 0.1\n",
    "config-group-option.yaml": b"cpt:\n  lrr: 0.1\n",
    "config-group-flat.yaml": b"lr: 0.1\n",
    "config-list.yaml": b"generate:\n  temperature: [1, 2]\n",
    "config-huge.yaml": b"lr: " + b"1" * 400 + b"\n",
    "config-float-steps.yaml": b"generate:\n  steps: 8.7\n",
    "config-bool-steps.yaml": b"generate:\n  steps: true\n",
    "config-text-flag.yaml": b"generate:\n  early-stop: 'yes'\n",
    "unclosed.csv": 'text,n\n"kapanmamış tırnak,1\n'.encode(),
    "xcopa-question.jsonl": (json.dumps({**XCOPA, "question": "sebep"}) + "\n").encode(),
    "xcopa-emptychoice.jsonl": (json.dumps({**XCOPA, "choice1": ""}) + "\n").encode(),
    "turblimp-nocolumn.csv": "good;bad\nKedi süt içer.;Süt kedi içer.\n".encode(),
    "turblimp-emptybad.csv": "good_sentence;bad_sentence\nKedi süt içer.;\n".encode(),
    "turblimp-same.csv": "good_sentence;bad_sentence\nKedi süt içer.;Kedi süt içer.\n".encode(),
    "turblimp-latin1.csv": "good_sentence;bad_sentence\nKedi süt.;Süt kedi.\n".encode("latin-1"),
    "turblimp-comma.csv": "good_sentence,bad_sentence\nKedi süt içer.,Süt kedi içer.\n".encode(),
    "multiblimp-semi.csv": "sen;wrong_sen\nKedi süt içer.;Kediler süt içer.\n".encode(),
    "mine/thesis.txt": b"years of work\n",
    "mine/model/model.safetensors": b"not really weights, but mine\n",
    "cpt-data-fake/manifest.json": b'{"kind": "sft", "max_length": 64}\n',
    "sft-data-fake/manifest.json": b'{"kind": "cpt", "max_length": 64}\n',
    "no-manifest/readme.txt": b"a folder without a manifest\n",
    "a-run/.diffutron.json": b'{"kind": "run"}\n',
    "a-run/run.json": b'{"preset": "tiny"}\n',
    "a-file": b"a file where a folder is expected\n",
}


def _tiny_model(folder: Path, *, sampler: dict | None, init: float = 0.02) -> Path:
    import torch
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from diffutron_data import load_tokenizer

    tokenizer = load_tokenizer("tiny")
    torch.manual_seed(0)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        cls_token_id=2,
        sep_token_id=1,
        initializer_range=init,
    )
    ModernBertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if sampler is not None:
        (folder / "sampler_config.json").write_text(json.dumps(sampler), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A user's folder: the files above, a tiny model, and a model with a broken sampler config.
    Cases pass paths as ``{w}`` (the folder) and ``{m}`` (the model)."""
    root = tmp_path_factory.mktemp("world")
    for name, data in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    sampler = {"steps": 8, "max_new_tokens": 16, "block_length": 8}
    _tiny_model(root / "model", sampler=sampler)
    broken = _tiny_model(root / "model-bad-sampler", sampler=None)
    (broken / "sampler_config.json").write_text('{"steps": 8, "temperature": ', encoding="utf-8")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="session")
def bad_input(world):
    """Run one case and check what every case promises: the exit code; exactly one line of the
    output saying ``Error: …`` and naming the problem; no traceback; every file of the world
    byte-for-byte as it was, and no file added."""
    from click.testing import CliRunner

    def check(app, argv, code, expected, *, stdin=None, roots=()):
        roots = [world, *roots]
        before = [snapshot(r) for r in roots]
        args = [a.format(w=world, m=world / "model") for a in argv]
        result = CliRunner().invoke(app, args, input=stdin)
        output = result.output
        assert result.exit_code == code, (args, result.exit_code, output, result.exception)
        assert "Traceback" not in output, output
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), repr(result.exception)
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, output
        assert expected.format(w=world) in errors[0], (expected, errors[0])
        assert [snapshot(r) for r in roots] == before, "files around the command changed"
        return errors[0]

    return check


@pytest.fixture
def fresh_model(tmp_path):
    """A tiny model of the test's own, to write into (the world's stays as it was); its weights
    large enough that its guesses move as the canvas fills."""
    sampler = {"steps": 8, "max_new_tokens": 16, "block_length": 8}
    return _tiny_model(tmp_path / "model", sampler=sampler, init=0.3)
