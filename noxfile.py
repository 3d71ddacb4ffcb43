"""Diffutron's checks, each in its own environment built from uv.lock.

    uv run nox                 # every session: tests per package, integration, lint, build
    uv run nox -s "tests(core)"
    uv run nox -s build        # every wheel and sdist, each installed alone in a clean venv

Each test session installs one workspace member with only its own declared dependencies
(``uv sync --package``), so a missing dependency fails there rather than hiding behind a neighbour.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"
nox.options.error_on_external_run = True
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).parent
MEMBERS = {
    "common": "packages/diffutron-common",
    "core": "packages/diffutron-core",
    "data": "packages/diffutron-data",
    "train": "packages/diffutron-train",
    "sample": "packages/diffutron-sample",
    "eval": "packages/diffutron-eval",
    "serve": "packages/diffutron-serve",
    "cli": "apps/diffutron-cli",
}
# What each wheel must (and must not) bring along when installed alone.
# What each wheel must be able to do from its own files alone (e.g. ship its data).
SMOKE = {
    "data": "from diffutron_data import load_tokenizer\n"
    "from diffutron_data import corpus_documents, instruction_conversations\n"
    "assert len(load_tokenizer('tiny')) == 4096\n"
    "assert corpus_documents() and instruction_conversations()\n",
}
SMOKE["sample"] = """
import tempfile
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import ModernBertConfig, ModernBertForMaskedLM, PreTrainedTokenizerFast
from diffutron_sample import SamplerConfig, decode_new, generate, load_model, prompt_ids
words = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "kedi", "süt", "içer", "ve", "uyur"]
core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tokenizer = PreTrainedTokenizerFast(
    tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>",
    unk_token="<unk>", mask_token="<mask>",
)
config = ModernBertConfig(
    vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    num_attention_heads=2, max_position_embeddings=32,
    pad_token_id=0, eos_token_id=1, bos_token_id=2, cls_token_id=2, sep_token_id=1,
)
folder = tempfile.mkdtemp()
torch.manual_seed(0)  # every random model is seeded, so the check is the same on every run
ModernBertForMaskedLM(config).save_pretrained(folder)  # a model dir, as diffutron-train writes
tokenizer.save_pretrained(folder)
model, tok = load_model(folder, device="cpu")
ids = torch.tensor([prompt_ids(tok, "kedi süt", chat=False)])
out = generate(model, ids, SamplerConfig(4, 8, 4), mask_token_id=tok.mask_token_id)
assert out.shape == (1, 11) and bool((out != tok.mask_token_id).all()), out
print("generated from a saved model dir:", repr(decode_new(tok, out, 8)[0]))
"""
FORBIDDEN_IN_CLOSURE = {
    "sample": (
        "datasets",
        "peft",
        "bitsandbytes",
        "lm_eval",
        "accelerate",
        "fastapi",
        "uvicorn",
    ),
    "core": ("transformers", "datasets", "peft", "lm_eval"),
}
# What the lint session type-checks: these with mypy --strict, the others with its defaults.
MYPY_STRICT = (
    "packages/diffutron-common/src/diffutron_common",
    "packages/diffutron-core/src/diffutron_core",
    "packages/diffutron-sample/src/diffutron_sample",
    "packages/diffutron-serve/src/diffutron_serve",
)
MYPY_DEFAULT = (
    "packages/diffutron-data/src/diffutron_data",
    "packages/diffutron-train/src/diffutron_train",
    "packages/diffutron-eval/src/diffutron_eval",
    "apps/diffutron-cli/src/diffutron_cli",
)
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "UV_PYTHON_DOWNLOADS": "never",
}


def distribution(member: str) -> str:
    return Path(MEMBERS[member]).name


def sync(session: nox.Session, *args: str) -> None:
    """Install exactly what uv.lock pins for ``args`` into this session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--locked",
        "--no-default-groups",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location, **OFFLINE},
        external=True,
    )


@nox.session
@nox.parametrize("member", list(MEMBERS), ids=list(MEMBERS))
def tests(session: nox.Session, member: str) -> None:
    """One member's own tests, in a venv holding that member and its declared dependencies."""
    sync(session, "--package", distribution(member), "--group", "test")
    session.run("pytest", f"{MEMBERS[member]}/tests", *session.posargs, env=OFFLINE)


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package tests (tests/): the workspace's shape and the CLI as users call it. Their
    trained-model figures must hold on every CPU's kernels, so CI runs them with torch's AVX2
    kernels forced (``ATEN_CPU_CAPABILITY``; set it yourself to try ``default`` or ``avx512``)."""
    sync(session, "--package", "diffutron-cli", "--group", "test")
    env = dict(OFFLINE)
    if os.environ.get("CI") and not os.environ.get("ATEN_CPU_CAPABILITY"):
        env["ATEN_CPU_CAPABILITY"] = "avx2"
    session.run("pytest", "tests", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree, then mypy: ``--strict`` over
    common, core, sample and serve, its default flags over data, train, eval and the CLI."""
    sync(session, "--all-packages", "--group", "lint")  # mypy reads every member's imports
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", *MYPY_STRICT)
    session.run("mypy", *MYPY_DEFAULT)


@nox.session(default=False)
@nox.parametrize("member", list(MEMBERS), ids=list(MEMBERS))
def release(session: nox.Session, member: str) -> None:
    """One package as it would be published, alone (docs/releasing.md): built without workspace
    sources, its metadata checked as PyPI does (twine check --strict), and its wheel installed in
    a clean venv against its siblings' current wheels. Publishing itself is never run here."""
    sync(session, "--only-group", "release")
    name = distribution(member)
    out = Path(session.create_tmp()) / "release"
    shutil.rmtree(out, ignore_errors=True)
    package, siblings = out / "package", out / "siblings"
    session.run(
        "uv", "build", "--package", name, "--no-sources", "--out-dir", str(package),
        external=True, env=OFFLINE,
    )  # fmt: skip
    built = sorted([*package.glob("*.whl"), *package.glob("*.tar.gz")])
    session.run("twine", "check", "--strict", *map(str, built), env=OFFLINE)
    session.run(
        "uv", "build", "--all-packages", "--wheel", "--out-dir", str(siblings),
        external=True, env=OFFLINE,
    )  # fmt: skip
    (wheel,) = package.glob("*.whl")
    for own in siblings.glob(f"{name.replace('-', '_')}-*.whl"):
        own.unlink()  # the package comes from its own release build, its siblings from here
    venv = out / "venv"
    session.run("uv", "venv", "--quiet", "--python", sys.executable, str(venv), external=True)
    python = str(venv / "bin" / "python")
    session.run(
        "uv", "pip", "install", "--quiet", "--python", python, "--find-links", str(siblings),
        *(f"--refresh-package={distribution(m)}" for m in MEMBERS), str(wheel),
        external=True, env=OFFLINE,
    )  # fmt: skip
    module = name.replace("-", "_")
    code = f"import {module}; print({module}.__name__, {module}.__version__)"
    session.run(python, "-c", code, external=True, env=OFFLINE)


@nox.session
def build(session: nox.Session) -> None:
    """Build every wheel and sdist; install each wheel alone in a clean venv and import it."""
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), external=True, env=OFFLINE)
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != len(MEMBERS) or len(sdists) != len(MEMBERS):
        session.error(
            f"expected {len(MEMBERS)} wheels and sdists, got {len(wheels)} and {len(sdists)}"
        )
    # Pin the siblings to the wheels just built, so a same-named package on an index never wins.
    constraints = dist / "constraints.txt"
    constraints.write_text(
        "".join(
            f"{w.name.split('-')[0].replace('_', '-')}=={w.name.split('-')[1]}\n" for w in wheels
        )
    )
    for member in MEMBERS:
        module = distribution(member).replace("-", "_")
        (wheel,) = [w for w in wheels if w.name.startswith(f"{module}-")]
        venv = Path(session.create_tmp()) / f"venv-{member}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run("uv", "venv", "--quiet", "--python", sys.executable, str(venv), external=True)
        python = str(venv / "bin" / "python")
        session.run(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            "--find-links",
            str(dist),
            "--constraint",
            str(constraints),
            # Versions move in lockstep, so a wheel built earlier has the same name: never take
            # a Diffutron package from uv's cache instead of the one just built.
            *(f"--refresh-package={distribution(m)}" for m in MEMBERS),
            str(wheel),
            external=True,
            env=OFFLINE,
        )
        forbidden = FORBIDDEN_IN_CLOSURE.get(member, ())
        check = (
            "import importlib.util, sys\n"
            f"import {module}\n"
            f"print({module}.__name__, {module}.__version__)\n"
            f"present = [m for m in {forbidden!r} if importlib.util.find_spec(m)]\n"
            "assert not present, f'installed but must not be: {present}'\n" + SMOKE.get(member, "")
        )
        session.run(python, "-c", check, external=True, env=OFFLINE)
        if member == "cli":
            for script in ("diffutron", "diffutron-train", "diffutron-sample", "diffutron-eval"):
                session.run(
                    str(venv / "bin" / script), "--help", external=True, env=OFFLINE, silent=True
                )
            session.run(str(venv / "bin" / "diffutron"), "--version", external=True, env=OFFLINE)
            # The bundled run configs travel in the wheel and resolve to the presets.
            session.run(
                str(venv / "bin" / "diffutron-train"),
                "cpt",
                "--config",
                "paper-cpt",
                "--dry-run",
                external=True,
                env=OFFLINE,
                silent=True,
            )
