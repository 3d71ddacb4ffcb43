"""generate() against a straightforward re-implementation of LLaDA's generator with dLLM's
repetition penalty and guidance (docs/sampling.md#reference-sampler), written here
independently, token for token."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from diffutron_sample import MaskedLM, SamplerConfig, generate, infill

from .conftest import EOS, MASK, tiny_model


def llada_transfer_counts(block_mask_index, steps):
    mask_num = block_mask_index.sum(dim=1, keepdim=True)
    base, remainder = mask_num // steps, mask_num % steps
    counts = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        counts[i, : remainder[i]] += 1
    return counts


@torch.no_grad()
def reference_generate(
    model, prompt, *, steps, gen_length, block_length, cfg_scale=0.0, penalty=1.0
):
    x = torch.full((1, len(prompt) + gen_length), MASK, dtype=torch.long)
    x[0, : len(prompt)] = torch.tensor(prompt)
    prompt_index = x != MASK
    num_blocks = gen_length // block_length
    for block in range(num_blocks):
        start = len(prompt) + block * block_length
        end = start + block_length
        counts = llada_transfer_counts(x[:, start:end] == MASK, steps // num_blocks)
        for i in range(steps // num_blocks):
            mask_index = x == MASK
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = MASK
                logits, un_logits = torch.chunk(model(torch.cat([x, un_x])).logits, 2, dim=0)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            else:
                logits = model(x).logits
            if penalty != 1.0:
                for token in set(x[0].tolist()) - {MASK, EOS}:
                    column = logits[0, :, token]
                    logits[0, :, token] = torch.where(
                        column > 0, column / penalty, column * penalty
                    )
            x0 = logits.argmax(dim=-1)
            p = F.softmax(logits.to(torch.float64), dim=-1)
            x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, end:] = -float("inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(
                mask_index, x0_p, torch.tensor(-float("inf"), dtype=torch.float64)
            )
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                _, select = torch.topk(confidence[j], k=int(counts[j, i]))
                transfer[j, select] = True
            x[transfer] = x0[transfer]
    return x


PROMPTS = [[2, 17, 9, 30, 11], [2, 5, 40], [2, 8, 8, 21, 33, 12, 7, 19]]
SETTINGS = [
    {"steps": 16, "gen_length": 16, "block_length": 8},
    {"steps": 8, "gen_length": 16, "block_length": 4},
    {"steps": 16, "gen_length": 16, "block_length": 8, "cfg_scale": 1.5},
    {"steps": 16, "gen_length": 16, "block_length": 8, "penalty": 1.3},
    {"steps": 12, "gen_length": 24, "block_length": 12, "cfg_scale": 0.5, "penalty": 1.2},
]


def config_of(s):
    return SamplerConfig(
        steps=s["steps"],
        max_new_tokens=s["gen_length"],
        block_length=s["block_length"],
        cfg_scale=s.get("cfg_scale", 0.0),
        repetition_penalty=s.get("penalty", 1.0),
    )


@pytest.mark.parametrize(
    "settings", SETTINGS, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items())
)
@pytest.mark.parametrize("prompt", PROMPTS, ids=["p5", "p3", "p8"])
def test_greedy_generate_equals_the_reference_token_for_token(model, prompt, settings):
    expected = reference_generate(model, prompt, **settings)
    got = generate(
        model, torch.tensor([prompt]), config_of(settings), mask_token_id=MASK, eos_token_id=EOS
    )
    assert got.tolist() == expected.tolist()
    assert (got != MASK).all()


def test_one_forward_pass_per_step_and_the_full_head_gives_the_same_tokens(model):
    config = config_of(SETTINGS[0])
    restricted, full = MaskedLM(model), MaskedLM(model, restrict_head=False)
    a = generate(restricted, torch.tensor([PROMPTS[0]]), config, mask_token_id=MASK)
    b = generate(full, torch.tensor([PROMPTS[0]]), config, mask_token_id=MASK)
    assert a.tolist() == b.tolist()
    assert restricted.forward_passes == full.forward_passes == config.steps


@pytest.mark.parametrize("settings", [SETTINGS[0], SETTINGS[4]], ids=["plain", "cfg-penalty"])
def test_batch_of_different_lengths_equals_one_by_one(model, settings):
    config = config_of(settings)
    alone = [
        generate(model, torch.tensor([p]), config, mask_token_id=MASK, eos_token_id=EOS)[0]
        for p in PROMPTS
    ]
    width = max(map(len, PROMPTS))
    ids = torch.zeros(len(PROMPTS), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(PROMPTS):  # right-padded on purpose: generate re-pads on the left
        ids[i, : len(p)] = torch.tensor(p)
        mask[i, : len(p)] = 1
    batch = generate(model, ids, config, mask_token_id=MASK, eos_token_id=EOS, attention_mask=mask)
    for row, single in zip(batch, alone, strict=True):
        assert row[-(len(single)) :].tolist() == single.tolist()


def test_threshold_one_equals_the_reference_one_token_per_step(model):
    reference = SamplerConfig(steps=16, max_new_tokens=16, block_length=8)
    fast = reference.replace(threshold=1.0)
    for prompt in PROMPTS:
        counted = MaskedLM(model)
        got = generate(counted, torch.tensor([prompt]), fast, mask_token_id=MASK)
        assert (
            got.tolist()
            == generate(model, torch.tensor([prompt]), reference, mask_token_id=MASK).tolist()
        )
        assert counted.forward_passes == 16


def test_low_threshold_commits_several_tokens_per_step(model):
    counted = MaskedLM(model)
    config = SamplerConfig(steps=16, max_new_tokens=16, block_length=8, threshold=0.05)
    canvas = generate(counted, torch.tensor([PROMPTS[0]]), config, mask_token_id=MASK)
    assert (canvas != MASK).all() and counted.forward_passes < 16


def test_callback_sees_every_step_and_committed_tokens_never_change(model):
    seen = []
    config = SamplerConfig(steps=8, max_new_tokens=16, block_length=8)
    generate(
        model,
        torch.tensor([PROMPTS[1]]),
        config,
        mask_token_id=MASK,
        callback=lambda s, c: seen.append((s, c.clone())),
    )
    assert [s for s, _ in seen] == list(range(1, 9))
    for (_, before), (_, after) in itertools.pairwise(seen):
        committed = before != MASK
        assert torch.equal(after[committed], before[committed])
        assert (after == MASK).sum() == (before == MASK).sum() - 2  # 16 masks over 8 steps


def test_sampling_is_reproducible_with_a_generator(model):
    config = SamplerConfig(
        steps=16, max_new_tokens=16, block_length=8, temperature=1.0, remasking="random"
    )
    runs = [
        generate(
            model,
            torch.tensor([PROMPTS[0]]),
            config,
            mask_token_id=MASK,
            generator=torch.Generator().manual_seed(s),
        )
        for s in (5, 5, 6)
    ]
    assert runs[0].tolist() == runs[1].tolist() != runs[2].tolist()


def test_stochastic_transfer_fills_every_mask(model):
    config = SamplerConfig(steps=8, max_new_tokens=16, block_length=8, stochastic_transfer=True)
    canvas = generate(
        model,
        torch.tensor([PROMPTS[0]]),
        config,
        mask_token_id=MASK,
        generator=torch.Generator().manual_seed(0),
    )
    assert (canvas != MASK).all()


def test_infill_leaves_unmasked_tokens_untouched():
    model = tiny_model(seed=2)
    text = torch.tensor(
        [
            [2, 11, MASK, 13, MASK, MASK, 20, 21, MASK, 9, 1],
            [2, 30, 31, MASK, 33, 34, 35, 36, 37, 38, 1],
        ]
    )
    config = SamplerConfig(steps=8, max_new_tokens=16, block_length=4)
    filled = infill(model, text, config, mask_token_id=MASK)
    given = text != MASK
    assert torch.equal(filled[given], text[given])
    assert (filled != MASK).all()


def test_infill_of_a_masked_suffix_equals_generate(model):
    prompt = PROMPTS[0]
    one_per_step = SamplerConfig(steps=16, max_new_tokens=16, block_length=16)
    expected = generate(model, torch.tensor([prompt]), one_per_step, mask_token_id=MASK)
    # one window over the whole 21-position canvas; its schedule commits at most one per step
    window = SamplerConfig(steps=21, max_new_tokens=21, block_length=21)
    got = infill(model, torch.tensor([prompt + [MASK] * 16]), window, mask_token_id=MASK)
    assert got.tolist() == expected.tolist()


def first_end(row, width):
    tail = row[width:].tolist()
    return next(i for i, t in enumerate(tail) if t in (EOS, 0))


def test_early_stop_keeps_everything_up_to_the_end_token_and_saves_passes():
    model = tiny_model(seed=3)
    with torch.no_grad():
        model.decoder.bias[EOS] += 4.0  # make the model end its answers early
    prompts = torch.tensor([PROMPTS[0], [2, 40, 41, 42, 43]])
    for config in (
        SamplerConfig(steps=32, max_new_tokens=32, block_length=8),
        SamplerConfig(steps=32, max_new_tokens=32, block_length=8, threshold=0.9),
    ):
        plain, stopped = MaskedLM(model), MaskedLM(model)
        full = generate(plain, prompts, config, mask_token_id=MASK, eos_token_id=EOS)
        early = generate(
            stopped, prompts, config.replace(early_stop=True), mask_token_id=MASK, eos_token_id=EOS
        )
        for a, b in zip(full, early, strict=True):
            end = first_end(a, 5)
            assert end < 31, "the test model should end before the canvas does"
            assert a[: 5 + end + 1].tolist() == b[: 5 + end + 1].tolist()
            assert (b != MASK).all()
        assert stopped.forward_passes < plain.forward_passes


@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_threshold_batch_equals_one_by_one_and_costs_only_its_slowest_row(model, threshold):
    config = SamplerConfig(steps=24, max_new_tokens=24, block_length=8, threshold=threshold)
    alone, passes = [], []
    for p in PROMPTS:
        counted = MaskedLM(model)
        alone.append(generate(counted, torch.tensor([p]), config, mask_token_id=MASK)[0])
        passes.append(counted.forward_passes)
    width = max(map(len, PROMPTS))
    ids = torch.zeros(len(PROMPTS), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(PROMPTS):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    counted = MaskedLM(model)
    batch = generate(counted, ids, config, mask_token_id=MASK, attention_mask=mask)
    for row, single in zip(batch, alone, strict=True):
        assert row[-(len(single)) :].tolist() == single.tolist()
    # Each row moves to its next block when its current one is full: the batch takes as many
    # passes as its slowest row alone, not the sum over blocks of each block's slowest row.
    assert counted.forward_passes == max(passes)
