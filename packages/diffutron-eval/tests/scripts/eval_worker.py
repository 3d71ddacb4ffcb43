"""Run by ``torchrun --nproc_per_node N`` in test_distributed.py: ``run_bench`` and ``perplexity``
(pseudo and the bound) on a tiny model, on CPU processes (gloo), and what this process scored.

    eval_worker.py MODEL_DIR TEXTS_FILE OUT_DIR TASK=PATH ...
"""

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist

from diffutron_eval import perplexity, read_texts, run_bench
from diffutron_sample import load_model


def main(model_dir: str, texts_file: str, out: Path, data_files: list[str]) -> None:
    tasks = [pair.partition("=")[0] for pair in data_files]
    bench = run_bench(
        model_dir,
        output_dir=out / "bench",
        tasks=tasks,
        data_files=data_files,
        mc_num=2,
        batch_size=8,
        device="cpu",
        name="tiny",
    )
    model, tokenizer = load_model(model_dir, device="cpu")
    texts = read_texts([texts_file])
    pseudo = perplexity(model, tokenizer, texts, max_length=48, batch_size=4, seed=3)
    bound = perplexity(
        model, tokenizer, texts[:9], max_length=48, batch_size=3, seed=3, elbo=True, elbo_samples=2
    )
    report = {
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "bench": {"rank": bench.rank, "processes": bench.processes, "files": sorted(bench.files)},
        "bench_shard": bench.shard,
        "worst": {t: [p["doc_id"] for p in pairs] for t, pairs in bench.worst.items()},
        "pseudo": pseudo.to_dict(),
        "pseudo_shard": list(pseudo.shard),
        "bound": bound.to_dict(),
        "bound_shard": list(bound.shard),
    }
    rank = int(os.environ.get("RANK", "0"))
    (out / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:])
