"""Tiny models and a ``[CLS] ... [SEP]`` tokenizer built here, offline, for the eval tests.

Text comes from the Turkish corpus embedded in the repository (diffutron-data's resources, read
by path: this package's test venv does not hold diffutron-data); CETVEL-shaped files are written
by the tests. Only the checks on the real CETVEL dev files read the shared data folder
(``DIFFUTRON_SHARED_DATA``, else ``<repo>/../shared/data``) and skip when it is absent.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "packages" / "diffutron-data" / "src" / "diffutron_data" / "resources" / "corpus"
SHARED = (
    Path(os.environ["DIFFUTRON_SHARED_DATA"]).expanduser()
    if os.environ.get("DIFFUTRON_SHARED_DATA")
    else REPO.parent / "shared" / "data"
)
CETVEL_DEV = SHARED / "cetvel-dev"
CETVEL_DEV_FILES = ("exams_tr.train.jsonl", "sts_tr.dev.csv", "xcopa_tr.val.jsonl")


def require_shared(path: Path) -> Path:
    """``path`` when it exists; else skip (fail under CI unless DIFFUTRON_SHARED_DATA is set,
    since CI lays shared/ beside the clone)."""
    if path.exists():
        return path
    message = (
        f"shared data not found: {path} "
        "(set DIFFUTRON_SHARED_DATA to the shared data folder, the one holding cetvel-dev/)"
    )
    if os.environ.get("CI") and not os.environ.get("DIFFUTRON_SHARED_DATA"):
        pytest.fail(message)
    pytest.skip(message)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def corpus_sentences(limit: int | None = None) -> list[str]:
    """Sentences of the embedded corpus (paragraphs split after ``.``, ``!`` or ``?``), genre
    files in name order."""
    paths = sorted(CORPUS.glob("*.txt"))
    assert paths, f"embedded corpus not found under {CORPUS}"
    sentences = [
        sentence.strip()
        for path in paths
        for paragraph in path.read_text(encoding="utf-8").split("\n\n")
        for sentence in _SENTENCE_END.split(paragraph.strip())
        if sentence.strip()
    ]
    return sentences[:limit]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("DIFFUTRON_NO_PROGRESS", "1")


def build_bert_tokenizer(texts: list[str], vocab_size: int = 800):
    """A WordPiece tokenizer whose post-processor wraps text in ``[CLS] ... [SEP]`` (the pitfall
    docs/evaluation.md#tokenising-context-and-continuation names), with ``[MASK]``; saved and
    reloaded like a real one."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[SEP]", "[CLS]", "[UNK]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 2), ("[SEP]", 1)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        sep_token="[SEP]",
        cls_token="[CLS]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        eos_token="[SEP]",
        bos_token="[CLS]",
    )


def tiny_model(vocab_size: int, seed: int = 0, layers: int = 2, hidden: int = 64):
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    config = ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=256,
        global_attn_every_n_layers=1,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        cls_token_id=2,
        sep_token_id=1,
        attn_implementation="sdpa",
    )
    return ModernBertForMaskedLM(config).eval()


def train_mlm(model, tokenizer, texts: list[str], steps: int = 150, seed: int = 0):
    """A few plain masked-LM steps on ``texts`` (enough to beat a random model on them)."""
    torch.manual_seed(seed)
    rows = [tokenizer(t)["input_ids"][:64] for t in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = [rows[(step * 16 + i) % len(rows)] for i in range(16)]
        width = max(len(r) for r in batch)
        ids = torch.zeros((16, width), dtype=torch.long)
        attention = torch.zeros_like(ids)
        for i, r in enumerate(batch):
            ids[i, : len(r)] = torch.tensor(r)
            attention[i, : len(r)] = 1
        masked = (torch.rand(ids.shape) < 0.3) & attention.bool()
        masked[:, 0] = False
        labels = ids.masked_fill(~masked, -100)
        noisy = ids.masked_fill(masked, tokenizer.mask_token_id)
        loss = model(input_ids=noisy, attention_mask=attention, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def bert_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    build_bert_tokenizer(corpus_sentences()).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, bert_tokenizer):
    """A tiny model directory as diffutron-train writes one (safetensors, tokenizer)."""
    folder = tmp_path_factory.mktemp("model")
    tiny_model(len(bert_tokenizer)).save_pretrained(folder, safe_serialization=True)
    bert_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, bert_tokenizer):
    """:func:`model_dir`'s model after a few masked-LM steps on the embedded corpus, so that its
    scores depend on word order (a random model's barely do: reordered pairs would be near-ties)."""
    folder = tmp_path_factory.mktemp("trained")
    model = train_mlm(tiny_model(len(bert_tokenizer)), bert_tokenizer, corpus_sentences())
    model.save_pretrained(folder, safe_serialization=True)
    bert_tokenizer.save_pretrained(folder)
    return folder


HEADER = ["good_sentence", "bad_sentence", "good_cue", "bad_cue", "critical_region", "phenomenon"]


def minimal_pairs(sentences: list[str], count: int, offset: int = 0) -> list[tuple[str, str]]:
    """Pairs made from real sentences: the sentence, and it with its second word said twice (even
    pairs) or left out (odd pairs). The two differ by a whole word, so their scores differ by
    nats, far beyond what float rounding in other batches or on other CPUs could turn round."""
    found = []
    for sentence in sentences[offset:]:
        words = sentence.split()
        if 4 <= len(words) <= 14:
            second = [words[1]] * (2 if len(found) % 2 == 0 else 0)
            found.append((sentence, " ".join([words[0], *second, *words[2:]])))
        if len(found) == count:
            return found
    raise AssertionError("not enough sentences")


def write_turblimp(path, pairs, delimiter=";"):
    """A TurBLiMP phenomenon file of ``pairs``, as its repository writes them."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(HEADER)
        writer.writerows([good, bad, "-", "-", "-", "test"] for good, bad in pairs)
    return path


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (importlib import mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        tiny_model=tiny_model,
        train_mlm=train_mlm,
        sentences=corpus_sentences,
        build_bert_tokenizer=build_bert_tokenizer,
        minimal_pairs=minimal_pairs,
        write_turblimp=write_turblimp,
    )


@pytest.fixture(scope="session")
def cetvel_dev() -> Path:
    """The shared CETVEL dev folder, holding the real raw files; skips when any is missing."""
    for name in CETVEL_DEV_FILES:
        require_shared(CETVEL_DEV / name)
    return CETVEL_DEV


@pytest.fixture(scope="session")
def turblimp_dir() -> Path:
    """The shared TurBLiMP folder (16 ``;``-separated phenomenon files); skips when absent."""
    return require_shared(SHARED / "turblimp" / "augmented_binding.csv").parent


@pytest.fixture(scope="session")
def grammar(tmp_path_factory, kit):
    """``({task: pairs}, --data-files)``: two TurBLiMP phenomena and MultiBLiMP-tur of pairs
    made from the embedded corpus, in their repositories' formats (``;`` CSV, TSV)."""
    folder = tmp_path_factory.mktemp("grammar")
    sentences = kit.sentences()
    made = {
        "turblimp_binding": minimal_pairs(sentences, 12),
        "turblimp_passives": minimal_pairs(sentences, 10, offset=60),
        "multiblimp_tur": minimal_pairs(sentences, 8, offset=120),
    }
    write_turblimp(folder / "binding.csv", made["turblimp_binding"])
    write_turblimp(folder / "passives.csv", made["turblimp_passives"])
    with (folder / "tur.tsv").open("w", encoding="utf-8") as handle:
        handle.write("sen\twrong_sen\n")
        handle.writelines(f"{g}\t{b}\n" for g, b in made["multiblimp_tur"])
    files = [
        f"turblimp_binding={folder / 'binding.csv'}",
        f"turblimp_passives={folder / 'passives.csv'}",
        f"multiblimp_tur={folder / 'tur.tsv'}",
    ]
    return made, files


@pytest.fixture(scope="session")
def grammar_bench(tmp_path_factory, model_dir, grammar):
    """``(result, folder)`` of ``bench --suite grammar`` on :func:`grammar`'s files."""
    from diffutron_eval import run_bench

    _, files = grammar
    out = tmp_path_factory.mktemp("bench") / "grammar"
    result = run_bench(
        str(model_dir), output_dir=out, suite="grammar", tasks=[p.split("=")[0] for p in files],
        data_files=files, batch_size=16, device="cpu",
    )  # fmt: skip
    return result, out
