"""The adapter's content hash: what a registered version promises and every fetch re-checks.

Only the files that decide the loaded weights are hashed (the LoRA config and the safetensors weights),
so a regenerated README or a tokenizer copy saved beside them does not change a version's identity,
while one changed byte of a weight does.
"""

from __future__ import annotations

from pathlib import Path

from docs_assistant.errors import RegistryError
from docs_assistant.io import sha256_file, sha256_text

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
#: weight formats that unpickle (run code) on load; an adapter holding one is refused, safetensors only
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})


def adapter_files(directory: Path) -> list[Path]:
    """The files that make up a peft adapter, sorted by relative name; a clear error if it is not one."""
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise RegistryError(
            f"not a LoRA adapter: {CONFIG_FILE} and {WEIGHTS_FILE} are both required",
            where=directory,
            hint="save it with peft's save_pretrained(dir) (safetensors is the default)",
        )
    pickled = sorted(p.name for p in directory.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise RegistryError(
            f"pickle-format weights {pickled} beside the adapter; only safetensors are accepted",
            where=directory,
            hint="delete them and save with safe_serialization=True",
        )
    files = [p for p in directory.rglob("*") if p.is_file() and (p.name == CONFIG_FILE or p.suffix == ".safetensors")]
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def adapter_hash(directory: Path) -> str:
    """sha256 over the adapter's files: sorted relative names, each with its file's sha256."""
    directory = Path(directory)
    parts = [f"{p.relative_to(directory).as_posix()}:{sha256_file(p)}" for p in adapter_files(directory)]
    return sha256_text(*parts)
