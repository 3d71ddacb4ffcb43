"""The step-level engine: requests with their own settings, arriving at different steps, each give
exactly what they give alone; every step reports what it committed."""

import torch

from diffutron_sample import Engine, MaskedLM, SamplerConfig, generate, infill

from .conftest import EOS, MASK

PROMPTS = [[2, 17, 9, 30, 11], [2, 5, 40], [2, 8, 8, 21, 33, 12, 7, 19], [2, 44]]
CONFIGS = [
    SamplerConfig(steps=16, max_new_tokens=16, block_length=8),
    SamplerConfig(steps=8, max_new_tokens=16, block_length=4, cfg_scale=0.5),
    SamplerConfig(steps=24, max_new_tokens=24, block_length=8, threshold=0.3),
    SamplerConfig(steps=16, max_new_tokens=16, block_length=8, repetition_penalty=1.3),
]


def alone(model, prompt, config, seed=None):
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    canvas = generate(
        model,
        torch.tensor([prompt]),
        config,
        mask_token_id=MASK,
        eos_token_id=EOS,
        generator=generator,
    )
    return canvas[0, len(prompt) :].tolist()


def serve(engine, arrivals):
    """Run ``engine``, adding ``arrivals[step]`` (id, prompt, config, seed) before each step;
    ``(outputs by id, committed columns by id)``."""
    outputs, committed, step = {}, {}, 0
    while step <= max(arrivals) or engine.busy:
        for rid, prompt, config, seed in arrivals.get(step, []):
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            engine.add(rid, prompt, config, generator=generator)
        for event in engine.step():
            committed.setdefault(event.id, []).extend(event.committed)
            if event.done:
                outputs[event.id] = engine.pop(event.id).canvas.tolist()
        step += 1
    return outputs, committed


def test_requests_arriving_at_different_steps_each_give_what_they_give_alone(model):
    arrivals = {
        0: [(0, PROMPTS[0], CONFIGS[0], None)],
        3: [(1, PROMPTS[1], CONFIGS[1], None), (2, PROMPTS[2], CONFIGS[2], None)],
        7: [(3, PROMPTS[3], CONFIGS[3], None), (4, PROMPTS[0], CONFIGS[2], None)],
    }
    outputs, committed = serve(Engine(model, MASK, EOS), arrivals)
    for rid, prompt, config, _ in (a for group in arrivals.values() for a in group):
        assert outputs[rid][: len(prompt)] == prompt
        assert outputs[rid][len(prompt) :] == alone(model, prompt, config), rid
        # every answer position is committed exactly once, none of the prompt
        assert sorted(committed[rid]) == list(range(len(prompt), len(outputs[rid])))


def test_sampled_requests_with_their_own_generators_repeat_alone(model):
    sampled = SamplerConfig(
        steps=16, max_new_tokens=16, block_length=8, temperature=1.0, remasking="random"
    )
    stochastic = SamplerConfig(steps=8, max_new_tokens=16, block_length=8, stochastic_transfer=True)
    arrivals = {
        0: [(0, PROMPTS[0], sampled, 5), (1, PROMPTS[1], stochastic, 6)],
        2: [(2, PROMPTS[2], sampled, 7)],
    }
    outputs, _ = serve(Engine(model, MASK, EOS), arrivals)
    for rid, prompt, config, seed in (a for group in arrivals.values() for a in group):
        assert outputs[rid][len(prompt) :] == alone(model, prompt, config, seed), rid
    assert alone(model, PROMPTS[0], sampled, 5) != alone(model, PROMPTS[0], sampled, 8)


def test_a_cancelled_request_frees_its_row_and_changes_no_other():
    from .conftest import tiny_model

    counted = MaskedLM(tiny_model())
    engine = Engine(counted, MASK, EOS)
    engine.add("kept", PROMPTS[0], CONFIGS[0])
    engine.add("gone", PROMPTS[2], CONFIGS[0])
    engine.step()
    engine.step()
    engine.cancel("gone")
    passes = 2
    while engine.busy:
        engine.step()
        passes += 1
    assert "gone" not in engine.requests and counted.forward_passes == passes == 16
    kept = engine.pop("kept").canvas[len(PROMPTS[0]) :].tolist()
    assert kept == alone(counted, PROMPTS[0], CONFIGS[0])


def test_infill_and_generation_share_a_batch(model):
    text = [2, 11, MASK, 13, MASK, MASK, 20, 21, MASK, 9, 1]
    config = SamplerConfig(steps=8, max_new_tokens=16, block_length=4)
    expected = infill(model, torch.tensor([text]), config, mask_token_id=MASK)[0].tolist()
    engine = Engine(model, MASK, EOS)
    engine.add("gen", PROMPTS[1], CONFIGS[0])
    engine.add_infill("fill", text, config)
    while engine.busy:
        engine.step()
    assert engine.pop("fill").canvas.tolist() == expected
    assert engine.pop("gen").canvas[len(PROMPTS[1]) :].tolist() == alone(
        model, PROMPTS[1], CONFIGS[0]
    )
