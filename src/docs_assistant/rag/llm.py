"""LLM backends behind one small interface.

`LocalLLM` runs a transformers causal LM (optionally with a peft LoRA adapter) in process;
`OpenAICompatibleLLM` calls any `/v1/chat/completions` endpoint (vLLM, TGI, Ollama). The RAG pipeline,
the evals and the service only see `LLM`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from docs_assistant.config import TINY_MODEL, ModelSettings, Settings
from docs_assistant.errors import ModelError

SETTING_NAME = "setting 'model.name' (env DOCS_ASSISTANT_MODEL__NAME)"


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


@dataclass(frozen=True)
class ModelInfo:
    backend: str
    name: str
    revision: str | None
    adapter: str | None


#: receives generated text as it is produced (streaming); backends that cannot stream call it once
OnText = Callable[[str], None]


class LLM(Protocol):
    info: ModelInfo

    def generate(
        self, prompt: str, *, max_new_tokens: int | None = None, on_text: OnText | None = None
    ) -> Generation: ...


def resolve_model_path(settings: ModelSettings, models_dir: Path) -> tuple[str, str | None]:
    """(path or hub id, revision): builds the tiny default on first use; a missing local path is an error."""
    if settings.name == TINY_MODEL:
        from docs_assistant.rag.tiny_model import ensure_tiny_model, tiny_model_revision

        return str(ensure_tiny_model(models_dir)), tiny_model_revision()
    looks_local = settings.name.startswith(("/", ".", "~")) or Path(settings.name).exists()
    if looks_local:
        path = Path(settings.name).expanduser()
        if not (path / "config.json").is_file():
            raise ModelError(
                f"no model at {path} (config.json not found)",
                where=SETTING_NAME,
                hint=f"point it at a saved Hugging Face model directory or use '{TINY_MODEL}'",
            )
        return str(path), settings.revision
    return settings.name, settings.revision


def input_budget(settings: ModelSettings, config: Any, max_new_tokens: int | None = None) -> int:
    """Prompt tokens a local model may read: `max_input_tokens`, less where the answer would overrun its positions.

    A prompt plus its answer must fit the model's position embeddings; a prompt that used them all would
    leave no room to generate, so the answer's tokens come off the budget first.
    """
    new = max_new_tokens or settings.max_new_tokens
    budget = settings.max_input_tokens
    positions = getattr(config, "max_position_embeddings", None)  # the model's config: only its positions count
    if positions is not None and budget + new > positions:
        budget = positions - new
        if budget < 1:
            raise ModelError(
                f"an answer of {new} tokens leaves no room for a prompt in {positions} positions",
                where="setting 'model.max_new_tokens' (env DOCS_ASSISTANT_MODEL__MAX_NEW_TOKENS)",
                hint=f"keep it well under {positions}",
            )
    return budget


class LocalLLM:
    """A transformers causal LM in this process; safetensors only, remote code never trusted."""

    def __init__(self, settings: ModelSettings, models_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.settings = settings
        path, revision = resolve_model_path(settings, models_dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(
                path, revision=revision, trust_remote_code=False, use_safetensors=True, dtype=torch.float32
            )
        except Exception as exc:
            raise ModelError(
                f"cannot load model {settings.name!r}: {exc}",
                where=SETTING_NAME,
                hint="with HF_HUB_OFFLINE=1 a hub model must already be in the local cache",
            ) from None
        adapter = None
        if settings.adapter_path is not None:
            model, adapter = self._attach_adapter(model, settings.adapter_path)
        device = "cuda" if settings.device == "auto" and torch.cuda.is_available() else settings.device
        self.model = model.to("cpu" if device == "auto" else device).eval()
        self.info = ModelInfo("local", settings.name, revision, adapter)

    @staticmethod
    def _attach_adapter(model: Any, adapter_path: Path) -> tuple[Any, str]:
        from peft import PeftModel

        if not (adapter_path / "adapter_config.json").is_file():
            raise ModelError(
                f"no LoRA adapter at {adapter_path} (adapter_config.json not found)",
                where="setting 'model.adapter_path' (env DOCS_ASSISTANT_MODEL__ADAPTER_PATH)",
            )
        merged = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
        return merged, str(adapter_path)

    def input_budget(self, max_new_tokens: int | None = None) -> int:
        return input_budget(self.settings, self.model.config, max_new_tokens)

    def generate(self, prompt: str, *, max_new_tokens: int | None = None, on_text: OnText | None = None) -> Generation:
        """Generate from `prompt` as given; the pipeline fits its prompts to `input_budget` first (rag/context.py).

        A longer prompt from another caller is cut from the left, the safety net that keeps the model inside
        its positions; fitted prompts never reach it.
        """
        import torch

        started = time.perf_counter()
        budget = self.input_budget(max_new_tokens)
        enc = self.tokenizer(prompt, return_tensors="pt")
        ids = enc.input_ids[:, -budget:]
        mask = enc.attention_mask[:, -budget:]
        greedy = self.settings.temperature == 0.0
        kwargs: dict[str, Any] = {"do_sample": not greedy}
        if not greedy:
            torch.manual_seed(self.settings.seed)
            kwargs["temperature"] = self.settings.temperature
        if on_text is not None:
            kwargs["streamer"] = _relay(self.tokenizer, on_text)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.model.device),
                attention_mask=mask.to(self.model.device),
                max_new_tokens=max_new_tokens or self.settings.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **kwargs,
            )
        new = out[0, ids.shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Generation(text, int(ids.shape[1]), int(new.shape[0]), time.perf_counter() - started)


class OpenAICompatibleLLM:
    """Any server that speaks OpenAI's chat-completions API."""

    def __init__(self, settings: ModelSettings):
        import httpx

        self.settings = settings
        headers = {}
        if settings.openai_api_key is not None:
            headers["Authorization"] = f"Bearer {settings.openai_api_key.get_secret_value()}"
        self.client = httpx.Client(
            base_url=settings.openai_base_url, headers=headers, timeout=settings.request_timeout_s
        )
        self.info = ModelInfo("openai", settings.name, settings.revision, None)

    def generate(self, prompt: str, *, max_new_tokens: int | None = None, on_text: OnText | None = None) -> Generation:
        import httpx

        started = time.perf_counter()
        body = {
            "model": self.settings.name,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_new_tokens or self.settings.max_new_tokens,
            "temperature": self.settings.temperature,
            "seed": self.settings.seed,
        }
        try:
            response = self.client.post("/chat/completions", json=body)
            response.raise_for_status()
            data = response.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise ModelError(
                f"chat completion failed: {exc}",
                where="setting 'model.openai_base_url' (env DOCS_ASSISTANT_MODEL__OPENAI_BASE_URL)",
            ) from None
        usage = data.get("usage") or {}
        if on_text is not None:
            on_text(text.strip())
        return Generation(
            text.strip(),
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            time.perf_counter() - started,
        )


def _relay(tokenizer: Any, on_text: OnText) -> Any:
    """A transformers streamer that hands each decoded piece (whole words where it can) to `on_text`."""
    from transformers import TextStreamer

    class Relay(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                on_text(text)

    return Relay(tokenizer, skip_prompt=True, skip_special_tokens=True)


def load_llm(settings: ModelSettings, models_dir: Path) -> LLM:
    if settings.backend == "openai":
        return OpenAICompatibleLLM(settings)
    return LocalLLM(settings, models_dir)


def load_configured_llm(settings: Settings) -> LLM:
    """The LLM the settings name, with `model.adapter_alias` resolved (fetched, hash-verified) first.

    The one place the RAG pipeline and the service load their model; the registry (and mlflow) is consulted
    only when an alias is set.
    """
    from docs_assistant.registry.resolve import resolve_model_settings

    return load_llm(resolve_model_settings(settings), settings.paths.models_dir)
