"""The default LLM: a tiny Llama-architecture model built from a config with a fixed seed.

It is saved like any Hugging Face checkpoint (safetensors + config + tokenizer) and then loaded with
`from_pretrained`, so the loading path that real models take is the one that runs and is tested, with
no hub and no download. The tokenizer is byte-level with no merges: every byte is a token, so it needs
no training data and any text round-trips.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from docs_assistant.io import sha256_text

TINY_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}
SPECIAL_TOKENS = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}
SEED = 20260101
#: std of the (tied) embedding matrix. At the default 0.02 the final RMSNorm bounds every logit to about
#: +-1.3, so the model stays near-uniform whatever LoRA learns; at 0.2 fine-tuning can move the loss.
EMBEDDING_STD = 0.1
#: random weights fall into one repeated byte under greedy decoding; these keep the text varied
GENERATION: dict[str, Any] = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3}


def tiny_model_revision() -> str:
    """Content address of the recipe: the directory name and the `revision` reported in answers."""
    recipe = (TINY_CONFIG, SPECIAL_TOKENS, GENERATION)
    return sha256_text(*(json.dumps(part, sort_keys=True) for part in recipe), str(SEED), str(EMBEDDING_STD))[:12]


def _byte_token(byte: int) -> str:
    return _bytes_to_unicode()[byte]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-character table, which the ByteLevel pre-tokenizer uses."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _byte_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS.values())}
    vocab |= {ch: len(SPECIAL_TOKENS) + i for i, ch in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=SPECIAL_TOKENS["unk"]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
        model_max_length=TINY_CONFIG["max_position_embeddings"],
    )


def build_tiny_model(target: Path) -> Path:
    """Build and save the model into `target` atomically (a crash never leaves half a checkpoint)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{k: v for k, v in TINY_CONFIG.items() if k != "architectures"},
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, EMBEDDING_STD)
    # Random weights emit random bytes; keep generations to printable ASCII so answers stay readable text.
    printable = {tokenizer.convert_tokens_to_ids(_byte_token(b)) for b in range(32, 127)} | {
        tokenizer.convert_tokens_to_ids(_byte_token(10))
    }
    for key, value in GENERATION.items():
        setattr(model.generation_config, key, value)
    model.generation_config.suppress_tokens = [
        i for i in range(len(tokenizer)) if i not in printable and i != tokenizer.eos_token_id
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def ensure_tiny_model(models_dir: Path) -> Path:
    """The saved tiny model's directory, building it on first use."""
    target = models_dir / f"tiny-random-llama-{tiny_model_revision()}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    if target.exists():  # left over from an interrupted build of an older layout
        shutil.rmtree(target)
    return build_tiny_model(target)
