import copy
import json
import threading

import datasets
import pytest

from diffutron_data import DataError, Source, build_sft_dataset, encode_example, render_chat, stream
from diffutron_data.chat import split_prompt_response

ALPACA = [
    {"instruction": "Türkiye'nin başkenti neresidir?", "input": "", "output": "Ankara."},
    {
        "instruction": "Bu cümleyi özetle.",
        "input": "Hava bugün çok güzel, parka gittik.",
        "output": "Parka gittik.",
    },
]
INSTRUCTURCA = [{"Input": "Bir renk söyle.", "Output": "Mavi."}]
MESSAGES = [
    {
        "messages": [
            {"role": "system", "content": "Kısa cevap ver."},
            {"role": "user", "content": "Merhaba!"},
            {"role": "assistant", "content": "Merhaba, nasılsın?"},
            {"role": "user", "content": "İyiyim."},
            {"role": "assistant", "content": "Sevindim."},
        ]
    }
]


def write_jsonl(path, rows):
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return Source(str(path))


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("rows", "expected_messages"),
    [
        (
            ALPACA,
            [
                [
                    {"role": "user", "content": "Türkiye'nin başkenti neresidir?"},
                    {"role": "assistant", "content": "Ankara."},
                ],
                [
                    {
                        "role": "user",
                        "content": "Bu cümleyi özetle.\n\nHava bugün çok güzel, parka gittik.",
                    },
                    {"role": "assistant", "content": "Parka gittik."},
                ],
            ],
        ),
        (
            INSTRUCTURCA,
            [
                [
                    {"role": "user", "content": "Bir renk söyle."},
                    {"role": "assistant", "content": "Mavi."},
                ]
            ],
        ),
        (MESSAGES, [MESSAGES[0]["messages"]]),
    ],
    ids=["alpaca", "instructurca", "messages"],
)
def test_maskable_span_is_exactly_the_response(tmp_path, tokenizer, rows, expected_messages):
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    manifest = build_sft_dataset([source], tokenizer, tmp_path / "out", tokenizer_name="tiny")
    data = datasets.load_from_disk(str(tmp_path / "out"))
    assert manifest["kept"] == len(data) == len(expected_messages)
    for row, messages in zip(data, expected_messages, strict=True):
        prompt, response = split_prompt_response(messages)
        assert prompt.endswith("[Answer]\n") and response.endswith("\n[/Answer]\n\n")
        prompt_ids, response_ids = ids(tokenizer, prompt), ids(tokenizer, response)
        assert row["input_ids"] == prompt_ids + response_ids
        assert row["prompt_length"] == len(prompt_ids)
        assert row["maskable"] == [False] * len(prompt_ids) + [True] * len(response_ids)
        assert tokenizer.decode(row["input_ids"]) == render_chat(messages)
        end = ids(tokenizer, "\n[/Answer]\n\n")
        assert row["input_ids"][-len(end) :] == end  # the end marker is there and maskable
        assert all(row["maskable"][-len(end) :])


def test_length_limits_drop_or_truncate(tokenizer):
    prompt, response = (
        "[Question]\nx\n[/Question]\n\n[Answer]\n",
        "bir iki üç dört beş\n[/Answer]\n\n",
    )
    n_prompt, n_response = len(ids(tokenizer, prompt)), len(ids(tokenizer, response))
    row, status = encode_example(prompt, response, tokenizer, max_length=n_prompt + n_response)
    assert status == "kept" and len(row["input_ids"]) == n_prompt + n_response
    row, status = encode_example(prompt, response, tokenizer, max_length=n_prompt + 2)
    assert (row, status) == (None, "response_too_long")
    row, status = encode_example(
        prompt, response, tokenizer, max_length=n_prompt + 2, truncate_response=True
    )
    assert (
        status == "truncated"
        and len(row["input_ids"]) == n_prompt + 2
        and sum(row["maskable"]) == 2
    )
    assert encode_example(prompt, response, tokenizer, max_length=n_prompt) == (
        None,
        "prompt_too_long",
    )


def test_drops_are_counted_and_bad_rows_reported(tmp_path, tokenizer):
    rows = [
        *ALPACA,
        {"instruction": "uzun " * 200, "input": "", "output": "Kısa."},
        {"instruction": "Kısa soru?", "input": "", "output": "uzun " * 200},
        {"instruction": "", "input": "", "output": "Boş talimat."},
        {"instruction": "Cevapsız.", "input": ""},
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    manifest = build_sft_dataset(
        [source], tokenizer, tmp_path / "out", tokenizer_name="tiny", max_length=64
    )
    assert manifest["kept"] == 2
    assert manifest["dropped"] == {"malformed_row": 2, "prompt_too_long": 1, "response_too_long": 1}
    assert manifest["read"] == len(rows) == manifest["kept"] + sum(manifest["dropped"].values())
    assert (
        f"{source.location}:5: malformed row ('instruction' is empty); skipped"
        in manifest["problems"]
    )
    assert (
        f"{source.location}:6: malformed row (no field 'output'); skipped" in manifest["problems"]
    )
    truncated = build_sft_dataset(
        [source],
        tokenizer,
        tmp_path / "t",
        tokenizer_name="tiny",
        max_length=64,
        truncate_response=True,
    )
    assert truncated["kept"] == 3 and truncated["truncated"] == 1
    assert max(len(x) for x in datasets.load_from_disk(str(tmp_path / "t"))["input_ids"]) == 64


def test_extra_conversations_and_unknown_schema(tmp_path, tokenizer):
    extra = [[{"role": "user", "content": "Selam"}, {"role": "assistant", "content": "Selam!"}]]
    manifest = build_sft_dataset(
        None, tokenizer, tmp_path / "x", tokenizer_name="tiny", extra_conversations=extra
    )
    assert manifest["kept"] == 1 and manifest["extra"]["conversations"] == 1
    other = [[{"role": "user", "content": "Selam"}, {"role": "assistant", "content": "Merhaba!"}]]
    changed = build_sft_dataset(
        None, tokenizer, tmp_path / "x2", tokenizer_name="tiny", extra_conversations=other
    )  # same count, other content: another recipe, so a run never reuses the old rows
    assert changed["extra"]["sha256"] != manifest["extra"]["sha256"]
    assert changed["fingerprint"] != manifest["fingerprint"]
    source = write_jsonl(tmp_path / "rows.jsonl", [{"question": "?", "answer": "!"}])
    with pytest.raises(DataError, match="no known instruction schema"):
        build_sft_dataset([source], tokenizer, tmp_path / "y", tokenizer_name="tiny")
    with pytest.raises(DataError, match="no usable instruction rows"):
        build_sft_dataset(None, tokenizer, tmp_path / "z", tokenizer_name="tiny")


def test_rows_stream_in_chunks_in_order_the_same_with_several_processes(
    tmp_path, tokenizer, monkeypatch
):
    monkeypatch.setattr(stream, "CHUNK", 7)  # four chunks
    started, real = [], stream._started

    def counted(num_proc, backend):
        started.append(num_proc)
        return real(num_proc, backend)

    monkeypatch.setattr(stream, "_started", counted)
    rows = [
        {
            "instruction": f"Soru {i}?" + " uzun" * (40 * (i % 4 == 1)),
            "input": "",
            "output": f"{i}.",
        }
        for i in range(25)
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    built = {
        n: build_sft_dataset(
            [source],
            tokenizer,
            tmp_path / f"p{n}",
            tokenizer_name="tiny",
            max_length=32,
            num_proc=n,
        )
        for n in (1, 8)
    }
    assert started == [4]  # one process starts none; eight asked, four chunks: four workers
    assert built[1] == built[8]
    for name in ("data-00000-of-00001.arrow", "state.json", "dataset_info.json", "manifest.json"):
        assert (tmp_path / "p1" / name).read_bytes() == (tmp_path / "p8" / name).read_bytes()
    expected = []
    for row in rows:  # each row as encode_example makes it alone; the long prompts are dropped
        messages = [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["output"]},
        ]
        one, _ = encode_example(*split_prompt_response(messages), tokenizer, max_length=32)
        expected += [one] if one else []
    data = datasets.load_from_disk(str(tmp_path / "p8"))
    assert 0 < len(expected) < len(rows) and built[8]["dropped"] == {
        "prompt_too_long": len(rows) - len(expected)
    }
    assert [{k: r[k] for k in expected[0]} for r in data] == expected
    assert built[8]["tokens"] == sum(len(r["input_ids"]) for r in expected)
    assert [r["origin"] for r in data] == [
        f"{source.location}:{i + 1}" for i, row in enumerate(rows) if i % 4 != 1
    ]


def test_two_builds_at_once_in_threads_each_use_their_own_tokenizer(
    tmp_path, tokenizer, monkeypatch
):
    monkeypatch.setattr(stream, "CHUNK", 5)  # many chunks, interleaved between the two builds
    other = copy.deepcopy(tokenizer)
    other.backend_tokenizer.enable_truncation(3)  # another tokenizer: at most 3 ids a text
    talk = [
        [{"role": "user", "content": f"soru {i} " * 5}, {"role": "assistant", "content": "evet"}]
        for i in range(200)
    ]

    def build(name, tok):
        return build_sft_dataset(
            None, tok, tmp_path / name, tokenizer_name="tiny", extra_conversations=talk
        )

    alone = {name: build(f"{name}-alone", tok) for name, tok in (("a", tokenizer), ("b", other))}
    together = {}
    threads = [
        threading.Thread(target=lambda n=name, t=tok: together.update({n: build(n, t)}))
        for name, tok in (("a", tokenizer), ("b", other))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert alone["a"]["tokens"] != alone["b"]["tokens"]
    for name in ("a", "b"):
        assert together[name]["tokens"] == alone[name]["tokens"]
        assert (tmp_path / name / "data-00000-of-00001.arrow").read_bytes() == (
            tmp_path / f"{name}-alone" / "data-00000-of-00001.arrow"
        ).read_bytes()
