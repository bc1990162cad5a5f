"""Regenerate the tiny model that the local engine serves with ``--load-format dummy``.

The model is only a Llama-style ``config.json`` and a byte-level BPE tokenizer trained offline on
the project's own text. vLLM fills the weights with random numbers, so generated text is noise,
but batching, KV-cache accounting, preemption and timings are vLLM's own.

Run ``python -m sandbox.model.build_tiny_model`` after large changes to the docs; the output is
committed, so nothing is trained or downloaded at run time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

__all__ = ["MODEL_DIR", "build", "corpus_files"]

MODEL_DIR = Path(__file__).resolve().parent / "tiny-llama"
REPO_ROOT = Path(__file__).resolve().parents[2]

VOCAB_SIZE = 2048
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]

# A chat template keeps /v1/chat/completions usable; the role markers are plain text.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Small enough to load in seconds on two cores, big enough that prefill and decode take
# measurable time and the KV cache fills at realistic token counts.
LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
}


def corpus_files(root: Path = REPO_ROOT) -> list[Path]:
    """The project's own prose and code, in a stable order so training is repeatable."""
    patterns = ["README.md", "docs/**/*.md", "incidents/**/*.md", "sandbox/**/*.py"]
    files: set[Path] = set()
    for pattern in patterns:
        files.update(p for p in root.glob(pattern) if p.is_file())
    return sorted(files)


def train_tokenizer(files: list[Path]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(f) for f in files], trainer)
    # Every id the random model can sample must decode, so pad the vocabulary to its full size
    # when the corpus is too small to learn that many merges.
    missing = VOCAB_SIZE - tokenizer.get_vocab_size()
    if missing > 0:
        tokenizer.add_tokens([f"<extra_{i}>" for i in range(missing)])
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return tokenizer


def build(out_dir: Path = MODEL_DIR) -> Path:
    files = corpus_files()
    if not files:
        raise SystemExit(f"no text to train on under {REPO_ROOT}")
    tokenizer = train_tokenizer(files)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config = dict(LLAMA_CONFIG)
    config.update(
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=tokenizer.token_to_id("<s>"),
        eos_token_id=tokenizer.token_to_id("</s>"),
        pad_token_id=tokenizer.token_to_id("<pad>"),
    )
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "add_bos_token": True,
        "model_max_length": config["max_position_embeddings"],
        "chat_template": CHAT_TEMPLATE,
    }
    generation_config = {
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
    }
    for name, data in [
        ("config.json", config),
        ("tokenizer_config.json", tokenizer_config),
        ("generation_config.json", generation_config),
        (
            "special_tokens_map.json",
            {k: tokenizer_config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")},
        ),
    ]:
        (out_dir / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(
        f"tiny model written to {out_dir} (vocab {tokenizer.get_vocab_size()}, {len(files)} files of text)"
    )
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="output folder")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
