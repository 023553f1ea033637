"""The model-family matrix: tiny random-initialised models of every architecture family the probes are tested on.

Each `Family` names a transformers config class with the kwargs of a tiny model (2 layers, d_model 64, 4 heads, a
small MLP) that switches the family's distinguishing features on (grouped-query attention, sliding windows,
soft-capping, sandwich norms, post-norms, q/k norms, fused qkv, partial rotary, parallel residual, tied embeddings,
a chat template), real hub names of the family, and the checks that are expected to fail with the measured reason
(`expected_failures`; the tests in tests/test_family_matrix.py mark exactly those `xfail(strict=True)`, so a
declared failure that starts passing, or an undeclared one, fails the suite).

`save_tiny_family_model(family, folder)` writes a seeded random model plus a byte-level BPE tokenizer (trained here
on English text written in this module, so any English text tokenizes, as with real models) that
`probes.models.load_model(ModelSpec(name=str(folder), device="cpu"))` loads like any Hugging Face folder. Norm
weights and biases are perturbed away from their initial ones/zeros so that folding a norm wrongly (or forgetting
Gemma's 1 + w) shows in the parity tests; weights start with a larger spread than the usual 0.02 so attention
patterns are far from uniform and the soft-caps are active.

`markdown_table()` renders the README's "Supported model families" table from this matrix;
`python -m probes.families --markdown` prints it, and a test asserts the README holds exactly this table.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

N_LAYERS = 2
D_MODEL = 64
N_HEADS = 4
D_HEAD = D_MODEL // N_HEADS
D_MLP = 128
N_CTX = 1024  # real models have at least this; the poisoned curve needs room for 4 items per context
VOCAB_SIZE = 512
INIT_STD = 0.15  # larger than HF's 0.02, so attention is far from uniform and the soft-caps bite
NORM_NOISE = 0.3  # norm weights become 1 + N(0, 0.3) (Gemma: stored w ~ N(0, 0.3), applied as 1 + w)

BOS, EOS, PAD, UNK = "<|bos|>", "<|endoftext|>", "<|pad|>", "<|unk|>"
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
SPECIAL_TOKENS = [BOS, EOS, PAD, UNK, *CHAT_TOKENS]
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# The checks of the matrix, in table order: how each is run lives in tests/test_family_matrix.py.
PARITY_CHECKS = ("attention_parity", "steering_parity", "copying_parity")
PROBE_CHECKS = ("induction", "steering", "poisoned", "spectra")
CHECKS = ("load", *PARITY_CHECKS, *PROBE_CHECKS)
CHECK_LABELS = {
    "load": "loads",
    "attention_parity": "attention = HF",
    "steering_parity": "resid_post steering = HF hook",
    "copying_parity": "OV copying = HF weights",
    "induction": "induction scan",
    "steering": "steering sweep",
    "poisoned": "poisoned curve",
    "spectra": "weight spectra",
}


@dataclass(frozen=True)
class Family:
    key: str  # short name: test ids, folder names
    label: str  # what the README calls it
    config_class: str  # transformers config class
    model_class: str  # transformers causal-LM class
    config: dict  # kwargs of the tiny model (token ids and vocab size are added from the tokenizer)
    features: str  # the distinguishing features this tiny model switches on
    examples: tuple[str, ...]  # real hub names of the family
    decoder_layers: str  # attribute path of the HF decoder layers (a forward hook on layer l = resid_post l)
    chat_template: str | None = None
    expected_failures: dict[str, str] = field(default_factory=dict)  # check -> measured reason (xfail strict)

    def expected(self, check: str) -> str | None:
        """The measured reason `check` fails on this family, or None when it must pass."""
        if check not in CHECKS:
            raise KeyError(f"Unknown check {check!r}; the checks are {', '.join(CHECKS)}.")
        if check != "load" and "load" in self.expected_failures:
            return self.expected_failures["load"]
        return self.expected_failures.get(check)


def _llama_like(**extra) -> dict:
    return {
        "hidden_size": D_MODEL,
        "intermediate_size": D_MLP,
        "num_hidden_layers": N_LAYERS,
        "num_attention_heads": N_HEADS,
        "max_position_embeddings": N_CTX,
        "initializer_range": INIT_STD,
        **extra,
    }


FAMILIES: tuple[Family, ...] = (
    Family(
        key="gpt2",
        label="GPT-2",
        config_class="GPT2Config",
        model_class="GPT2LMHeadModel",
        config={
            "n_layer": N_LAYERS,
            "n_head": N_HEADS,
            "n_embd": D_MODEL,
            "n_inner": D_MLP,
            "n_positions": N_CTX,
            "initializer_range": INIT_STD,
        },  # fmt: skip
        features="learned positions, LayerNorm, tied embeddings, Conv1D weights",
        examples=("openai-community/gpt2", "openai-community/gpt2-medium", "distilbert/distilgpt2"),
        decoder_layers="transformer.h",
    ),
    Family(
        key="gpt_neox",
        label="GPT-NeoX / Pythia",
        config_class="GPTNeoXConfig",
        model_class="GPTNeoXForCausalLM",
        config=_llama_like(
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
            use_parallel_residual=True,
        ),
        features="partial rotary (25%), parallel residual, interleaved fused qkv, untied unembedding",
        examples=("EleutherAI/pythia-70m", "EleutherAI/pythia-160m", "EleutherAI/pythia-1b"),
        decoder_layers="gpt_neox.layers",
    ),
    Family(
        key="llama",
        label="Llama",
        config_class="LlamaConfig",
        model_class="LlamaForCausalLM",
        config=_llama_like(num_key_value_heads=1),
        features="grouped-query attention with one KV head, RMSNorm, gated MLP",
        examples=("meta-llama/Llama-3.2-1B", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
        decoder_layers="model.layers",
    ),
    Family(
        key="mistral",
        label="Mistral",
        config_class="MistralConfig",
        model_class="MistralForCausalLM",
        config=_llama_like(num_key_value_heads=2, head_dim=D_HEAD, sliding_window=8),
        features="sliding-window attention (window 8), grouped-query attention",
        examples=("mistralai/Mistral-7B-v0.1", "mistralai/Mistral-7B-Instruct-v0.3"),
        decoder_layers="model.layers",
    ),
    Family(
        key="qwen2",
        label="Qwen2 / Qwen2.5",
        config_class="Qwen2Config",
        model_class="Qwen2ForCausalLM",
        config=_llama_like(num_key_value_heads=2, tie_word_embeddings=True),
        features="qkv bias, tied embeddings, ChatML chat template, grouped-query attention",
        examples=("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2-0.5B"),
        decoder_layers="model.layers",
        chat_template=CHATML_TEMPLATE,
    ),
    Family(
        key="qwen3",
        label="Qwen3",
        config_class="Qwen3Config",
        model_class="Qwen3ForCausalLM",
        config=_llama_like(num_key_value_heads=2, head_dim=D_HEAD),
        features="per-head q/k RMSNorm, grouped-query attention",
        examples=("Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B"),
        decoder_layers="model.layers",
        chat_template=CHATML_TEMPLATE,
    ),
    Family(
        key="gemma2",
        label="Gemma 2",
        config_class="Gemma2Config",
        model_class="Gemma2ForCausalLM",
        config=_llama_like(
            num_key_value_heads=2,
            head_dim=D_HEAD,
            query_pre_attn_scalar=32,  # != head_dim, as in gemma-2-27b
            attn_logit_softcapping=5.0,
            final_logit_softcapping=5.0,
            sliding_window=8,
        ),
        features="attention and final logit soft-capping, sandwich norms, (1 + w) RMSNorm, sliding window on "
        "alternate layers, query_pre_attn_scalar, scaled embeddings",
        examples=("google/gemma-2-2b", "google/gemma-2-2b-it", "google/gemma-2-9b"),
        decoder_layers="model.layers",
    ),
    Family(
        key="phi3",
        label="Phi-3",
        config_class="Phi3Config",
        model_class="Phi3ForCausalLM",
        config=_llama_like(num_key_value_heads=2),
        features="fused qkv projection, fused gate/up MLP, grouped-query attention",
        examples=("microsoft/Phi-3-mini-4k-instruct", "microsoft/Phi-3.5-mini-instruct"),
        decoder_layers="model.layers",
    ),
    Family(
        key="olmo2",
        label="OLMo 2",
        config_class="Olmo2Config",
        model_class="Olmo2ForCausalLM",
        config=_llama_like(num_key_value_heads=2),
        features="post-norms (no pre-sublayer norm), q/k RMSNorm over all heads",
        examples=("allenai/OLMo-2-0425-1B", "allenai/OLMo-2-1124-7B"),
        decoder_layers="model.layers",
    ),
)
FAMILY_BY_KEY = {family.key: family for family in FAMILIES}


def family(key: str | Family) -> Family:
    if isinstance(key, Family):
        return key
    if key not in FAMILY_BY_KEY:
        raise KeyError(f"Unknown family {key!r}; the matrix has {', '.join(FAMILY_BY_KEY)}.")
    return FAMILY_BY_KEY[key]


# --- tokenizer -------------------------------------------------------------------------------------------

TRAINING_TEXT = """
The quick brown fox jumps over the lazy dog. A small model reads English text one token at a time and learns
which word is likely to come next. The capital of France is Paris, the capital of Italy is Rome, and the capital
of Japan is Tokyo. Water boils at one hundred degrees and freezes at zero. The sun rises in the east and sets in
the west. Birds fly south in the winter, and the trees lose their leaves in the autumn. She opened the door,
looked at the sky, and said that it would rain before the evening. He was reading a book about the history of
science, from the first astronomers to the people who built the modern computer. In my dream the ocean was made of
glass, the moon sang quietly to the mountains, and a river of light carried the city into the clouds. Imagine a
garden where the flowers speak and the stones remember every story they have heard. Question: what is the colour
of the sky on a clear day? Answer: the sky is blue. Question: how many legs does a spider have? Answer: eight.
According to the report, the new bridge will open next year; according to a rumour, it will never open at all.
The doctor said that the patient should rest, drink water, and return on Monday. Numbers such as 1, 2, 3, 10, 42,
100 and 2024 appear in many documents, with dates like 12 March and times like 9:30. People often write lists:
first, second, third; red, green, blue; north, south, east, west. The teacher asked the students to explain why
the moon changes its shape, and a girl answered that we see different parts of it lit by the sun. Music, art and
poetry are ways of sharing feelings that are hard to put into plain words. The train was late because of the snow,
so the passengers waited in the warm station and talked about their families, their work and their plans. This
sentence is a fact. That sentence might be false. Is it true that cats are animals? Yes, cats are animals, and
dogs are animals too. The company announced that its profits had grown, while its workers asked for higher pay.
"""


def byte_level_tokenizer(vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE tokenizer (GPT-2 style) trained on `TRAINING_TEXT`, as a PreTrainedTokenizerFast.

    Every byte is in the alphabet, so any text tokenizes; merges learned from the English text make common words
    single tokens. BOS is not added by the tokenizer (as GPT-2, Pythia, Qwen); the probes add it themselves."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in TRAINING_TEXT.splitlines() if line.strip()]
    core.train_from_iterator(lines * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=CHAT_TOKENS,
    )  # fmt: skip


# --- models ----------------------------------------------------------------------------------------------


def build_config(spec: Family, tokenizer):
    import transformers

    config_class = getattr(transformers, spec.config_class)
    return config_class(
        **spec.config,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def perturb_norms(model, noise: float = NORM_NOISE) -> None:
    """Move every norm's weight (and bias) off its initial ones (zeros for Gemma's 1 + w) by N(0, noise)."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if "norm" not in type(module).__name__.lower():
                continue
            for name in ("weight", "bias"):
                parameter = getattr(module, name, None)
                if isinstance(parameter, torch.nn.Parameter):
                    parameter.add_(noise * torch.randn_like(parameter))


def save_tiny_family_model(key: str | Family, folder: Path | str, seed: int = 0) -> Path:
    """Write a random-initialised tiny model of the family (seeded) plus its byte-level BPE tokenizer to `folder`."""
    import torch
    import transformers

    spec = family(key)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = byte_level_tokenizer()
    if spec.chat_template:
        tokenizer.chat_template = spec.chat_template
    config = build_config(spec, tokenizer)
    torch.manual_seed(seed)
    model = getattr(transformers, spec.model_class)(config)
    perturb_norms(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    note = {"note": f"random-initialised tiny {spec.label} test model (probes/families.py)", "trained": False}
    (folder / "assoclens.json").write_text(json.dumps(note, indent=2))
    return folder


# --- the README table ------------------------------------------------------------------------------------

TABLE_HEADING = "## Supported model families"


def _cell(spec: Family, checks: tuple[str, ...]) -> str:
    failing = [check for check in checks if spec.expected(check)]
    if not failing:
        return "yes"
    if len(checks) > 1:
        passing = [CHECK_LABELS[check] for check in checks if check not in failing]
        prefix = f"only {', '.join(passing)}; " if passing else ""
    else:
        prefix = ""
    return "no: " + prefix + "; ".join(f"{CHECK_LABELS[check]}: {spec.expected(check)}" for check in failing)


def markdown_table() -> str:
    """The README's table: one row per family with its example hub names and, per probe, whether it passes (or
    the measured reason it fails), all read from the matrix that tests/test_family_matrix.py enforces."""
    columns = [("Loads", ("load",)), ("Parity with HF", PARITY_CHECKS)]
    columns += [(CHECK_LABELS[check].capitalize(), (check,)) for check in PROBE_CHECKS]
    lines = [
        "| Family | Example hub names | Tiny test model switches on | "
        + " | ".join(name for name, _ in columns)
        + " |",
        "|---" * (3 + len(columns)) + "|",
    ]
    for spec in FAMILIES:
        examples = ", ".join(f"`{name}`" for name in spec.examples)
        cells = [_cell(spec, checks) for _, checks in columns]
        lines.append(f"| {spec.label} | {examples} | {spec.features} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_section() -> str:
    """The whole README section (heading, how it is made, table)."""
    return "\n".join(
        [
            TABLE_HEADING,
            "",
            "Generated by `python -m probes.families --markdown` from the matrix in `probes/families.py`; do not "
            "edit by hand. `tests/test_family_matrix.py` builds a tiny random-initialised model of each family "
            "(2 layers, d_model 64, a byte-level BPE tokenizer), runs every check below on it (a check marked "
            "*no* is an expected failure, `xfail(strict=True)`, with the measured reason), and fails when this "
            "table differs from the matrix. The probes run through the CLI and the result store with small "
            "settings (steering sweep and poisoned curve on the English defaults). Parity with HF: attention "
            "patterns equal Hugging Face eager `output_attentions`; a vector added at `blocks.{l}.hook_resid_post` "
            "gives the logits of a forward hook adding it to HF decoder layer l; the OV copying score equals the "
            "eigenvalue statistic of W_E W_V W_O W_U built from the HF weights with every norm on the path folded.",
            "",
            markdown_table(),
        ]
    )


def readme_section_in(text: str) -> str | None:
    """The "Supported model families" section of a README's text (up to the next `## ` heading), or None."""
    start = text.find(TABLE_HEADING + "\n")
    if start < 0:
        return None
    end = text.find("\n## ", start + len(TABLE_HEADING))
    return text[start : end if end >= 0 else len(text)].rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--markdown"]:
        print(readme_section())
        return 0
    print("usage: python -m probes.families --markdown   (prints the README's 'Supported model families' section)")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
