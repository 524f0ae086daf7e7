"""The one typed settings object.

Sources, highest first (12-factor): keyword arguments, environment variables (`DOCS_ASSISTANT_` prefix,
`__` between levels, e.g. `DOCS_ASSISTANT_RETRIEVAL__TOP_K=8`), files named like those variables in
`DOCS_ASSISTANT_SECRETS_DIR` (default /run/secrets: Docker swarm's secrets), the TOML file named by
`DOCS_ASSISTANT_CONFIG` (default `docs-assistant.toml` in the working directory, if present), defaults.
Relative paths are resolved against the working directory, so a checkout runs as it is.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from docs_assistant.errors import ConfigError

ENV_PREFIX = "DOCS_ASSISTANT_"
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG"
DEFAULT_CONFIG_FILE = "docs-assistant.toml"
SECRETS_DIR_ENV = f"{ENV_PREFIX}SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/run/secrets"  # where Docker swarm mounts a service's secrets
BUNDLED_EMBEDDER = "all-MiniLM-L6-v2"
TINY_MODEL = "tiny-random-llama"


def _compiling(patterns: list[str]) -> list[str]:
    """Settings that hold regular expressions fail at load, naming the pattern, not at first use."""
    import re

    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(_Section):
    """Where inputs are read and state and reports are written."""

    data_dir: Path = Field(default=Path("data"), description="the corpus (docs/) and QA pairs (qa/)")
    prompts_dir: Path = Field(default=Path("prompts"), description="versioned prompt templates")
    state_dir: Path = Field(
        default=Path("var"),
        description="LanceDB (lancedb/), models (models/), the registry (mlflow/), the eval cache (evals/)",
    )
    reports_dir: Path = Field(default=Path("reports"), description="stage reports, reports/<stage>/")
    model_cache_dir: Path | None = Field(
        default=None, description="where built/downloaded models live; default <state_dir>/models"
    )
    feedback_dir: Path | None = Field(
        default=None,
        description=(
            "where the service appends feedback as JSON lines, one file per process, for `validate` to ingest from "
            "data/feedback/ (the image sets /app/feedback, each environment's volume); unset: the feature store's "
            "`feedback` table"
        ),
    )

    @property
    def store_uri(self) -> Path:
        return self.state_dir / "lancedb"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or self.state_dir / "models"


class EmbeddingSettings(_Section):
    """Embedding model: the bundled offline MiniLM by default, any sentence-transformers model by name."""

    model: str = Field(
        default=BUNDLED_EMBEDDER,
        description=f"'{BUNDLED_EMBEDDER}' (bundled, offline), a local path, or a sentence-transformers id",
    )
    device: Literal["cpu", "cuda", "mps"] = Field(default="cpu", description="where the embedder runs")
    batch_size: int = Field(default=32, ge=1, le=4096, description="texts embedded per batch")


class ChunkSettings(_Section):
    """Chunk sizes are in embedder tokens: MiniLM truncates past 256, so chunks stay under it."""

    size: int = Field(default=200, ge=32, le=8192, description="chunk length, in embedder tokens")
    overlap: int = Field(default=30, ge=0, description="tokens shared by neighbouring chunks; below size")

    @model_validator(mode="after")
    def _overlap_smaller_than_size(self) -> ChunkSettings:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


class RetrievalSettings(_Section):
    """Explicit retrieval knobs; `ann_index` builds an IVF-PQ index, which `nprobes`/`refine_factor` tune."""

    top_k: int = Field(default=5, ge=1, le=100, description="chunks retrieved per question")
    metric: Literal["cosine", "l2", "dot"] = Field(default="cosine", description="vector distance")
    ann_index: bool = Field(default=False, description="build an IVF-PQ index (exact search without it)")
    num_partitions: int = Field(default=16, ge=1, description="IVF partitions (needs 16 chunks per partition)")
    num_sub_vectors: int = Field(default=16, ge=1, description="PQ sub-vectors per vector")
    nprobes: int = Field(default=20, ge=1, description="IVF partitions searched per query")
    refine_factor: int | None = Field(
        default=None, ge=1, description="re-rank this many times top_k exactly; unset: no re-ranking"
    )


class ModelSettings(_Section):
    """The LLM: a local transformers model (optionally + LoRA adapter) or an OpenAI-compatible endpoint."""

    backend: Literal["local", "openai"] = Field(
        default="local", description="local: transformers in this process; openai: any OpenAI-compatible endpoint"
    )
    name: str = Field(
        default=TINY_MODEL,
        description=f"'{TINY_MODEL}' (built locally), a local directory, or a Hugging Face model id",
    )
    revision: str | None = Field(default=None, description="pin a hub model to a commit hash")
    adapter_path: Path | None = Field(default=None, description="a LoRA adapter directory (peft), merged at load")
    adapter_alias: str | None = Field(
        default=None,
        description="load the adapter the model registry's alias (e.g. 'champion') points to, hash-verified",
    )
    device: Literal["cpu", "cuda", "mps", "auto"] = Field(default="cpu", description="auto: cuda when available")
    max_new_tokens: int = Field(default=48, ge=1, le=4096, description="the longest answer, in tokens")
    max_input_tokens: int = Field(
        default=1536,
        ge=16,
        description="prompt tokens the model reads; the lowest-ranked context chunks are dropped to fit",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0: greedy, so answers are reproducible")
    seed: int = Field(default=1234, description="sampling seed when temperature > 0 (sent to an openai endpoint too)")
    openai_base_url: str = Field(default="http://127.0.0.1:8000/v1", description="the endpoint, for backend=openai")
    openai_api_key: SecretStr | None = Field(default=None, description="its bearer key, for backend=openai")
    request_timeout_s: float = Field(default=60.0, gt=0, description="per request to the endpoint, for backend=openai")
    trust_remote_code: Literal[False] = Field(default=False, description="always off: remote code is never executed")


class PromptSettings(_Section):
    """Which versioned template under `prompts/` renders the RAG prompt."""

    id: str = Field(default="rag-answer", description="the template's id under prompts/")
    version: str = Field(default="1", description="which version of it")


#: longest deny-list phrase (a phrase is one line of a deny list, not a paragraph)
MAX_DENY_PHRASE_CHARS = 64


class GuardrailSettings(_Section):
    """Screens on the way in (prompt injection) and out (PII redaction, deny-list); on by default."""

    screen_input: bool = Field(default=True, description="refuse questions that try to override or extract the prompt")
    redact_pii: bool = Field(default=True, description="redact e-mail addresses, phone numbers and key-like strings")
    extra_injection_patterns: list[str] = Field(
        default_factory=list, description="regular expressions (case-insensitive) added to the built-in screen"
    )
    deny_list: list[str] = Field(
        default_factory=list, description="phrases (case-insensitive) that block an answer when it contains one"
    )
    refusal: str = Field(
        default="I can't help with that request.", min_length=1, description="what a blocked request gets"
    )

    @field_validator("extra_injection_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return _compiling(patterns)

    @field_validator("deny_list")
    @classmethod
    def _phrases_fit(cls, phrases: list[str]) -> list[str]:
        for phrase in phrases:
            if not phrase.strip() or len(phrase) > MAX_DENY_PHRASE_CHARS:
                raise ValueError(f"phrase {phrase!r} must be 1..{MAX_DENY_PHRASE_CHARS} characters")
        return phrases


class LimitSettings(_Section):
    """Input limits enforced before any work is done."""

    max_question_chars: int = Field(
        default=2000, ge=1, le=100_000, description="longer questions are refused before any work (422)"
    )


class ValidationSettings(_Section):
    """Thresholds of the validate stage; every check fails the gate past its `max_*_share` (0.0: any row)."""

    max_invalid_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="quarantined rows / rows in; past it nothing is ingested"
    )
    max_document_bytes: int = Field(default=1_000_000, ge=1, description="larger files are quarantined unread")
    min_document_chars: int = Field(default=20, ge=1, description="shorter document texts are quarantined")
    max_document_chars: int = Field(default=200_000, ge=1, description="longer document texts are quarantined")
    max_title_chars: int = Field(default=200, ge=1, description="longer titles are quarantined")
    max_question_chars: int = Field(default=2000, ge=1, description="longer QA questions are quarantined")
    max_answer_chars: int = Field(default=8000, ge=1, description="longer QA answers are quarantined")
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: [r"(?s)<!--.*?-->", r"(?im)^\s*(edit this page|back to top)\b.*$"],
        description="regular expressions removed from document bodies before validation and ingest",
    )
    max_duplicate_share: float = Field(default=0.0, ge=0.0, le=1.0, description="documents with the same text")
    near_duplicate_similarity: float = Field(default=0.95, gt=0.0, le=1.0, description="cosine of two embeddings")
    max_near_duplicate_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="documents at least near_duplicate_similarity to another"
    )
    max_encoding_share: float = Field(default=0.0, ge=0.0, le=1.0, description="U+FFFD, mojibake, control chars")
    max_foreign_script_share: float = Field(
        default=0.3, ge=0.0, le=1.0, description="per document: letters outside the expected script"
    )
    expected_script: Literal["latin", "any"] = Field(default="latin", description="any: no language check")
    max_language_share: float = Field(default=0.0, ge=0.0, le=1.0, description="documents in another script")
    max_pii_share: float = Field(default=0.0, ge=0.0, le=1.0, description="emails, phone numbers, key-like strings")
    pii_allowed_email_domains: list[str] = Field(
        default_factory=lambda: ["example.com", "example.org", "example.net"],
        description="reserved documentation domains (RFC 2606) are not personal data",
    )
    stale_after_days: int = Field(default=1095, ge=1, description="front-matter `updated` older than this is stale")
    max_stale_share: float = Field(default=0.25, ge=0.0, le=1.0, description="stale documents")
    min_chunk_tokens: int = Field(default=8, ge=1, description="shorter chunks count as short (checked by index)")
    max_chunk_tokens: int = Field(default=256, ge=1, description="longer chunks count as long (checked by index)")
    max_short_chunk_share: float = Field(default=0.25, ge=0.0, le=1.0, description="short chunks")
    max_long_chunk_share: float = Field(default=0.0, ge=0.0, le=1.0, description="long chunks")
    embedding_norm_tolerance: float = Field(
        default=1e-3, gt=0.0, description="how far from 1 a supplied embedding's length may be"
    )
    first_failures: int = Field(default=5, ge=1, le=1000, description="failing rows shown per check in the report")

    @field_validator("boilerplate_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return _compiling(patterns)


class ServeSettings(_Section):
    """The model service: bind address, API keys, admission control and request limits."""

    host: str = Field(default="127.0.0.1", description="the address `serve` listens on")
    port: int = Field(default=8000, ge=0, le=65535, description="the port `serve` listens on")
    environment: Literal["dev", "staging", "prod"] = Field(
        default="dev", description="outside dev, api_keys are required"
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list, description="bearer tokens (env: a JSON list); required outside dev"
    )
    max_concurrency: int = Field(default=2, ge=1, le=256, description="generations running at once")
    max_queue: int = Field(default=8, ge=0, le=10_000, description="requests waiting for a slot; past it: 429")
    request_timeout_s: float = Field(default=30.0, gt=0, description="per-request deadline; past it: 504")
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=8192,
        description="larger request bodies get 413 unread; the API schema's bounds fit it (1 MiB: chats of 42 messages)",
    )
    retry_after_s: int = Field(default=1, ge=1, description="the Retry-After sent with 429 and 503")
    answer_ids_kept: int = Field(default=10_000, ge=1, description="recent answer ids that feedback may cite")
    graceful_shutdown_s: float = Field(default=10.0, gt=0, description="in-flight requests get this long on stop")
    feedback_compact_every: int = Field(
        default=20,
        ge=0,
        description=(
            "merge the feedback table's files (each post adds one, and reads slow down with each) in the background "
            "after this many posts; 0: never (a store that compacts itself, such as LanceDB Cloud)"
        ),
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="intra-op threads for generation; 0: the CPUs this process may use divided by max_concurrency",
    )


class EvalSettings(_Section):
    """The prompt-eval gate: which suites file to run and which stored results count as the baseline."""

    config: Path = Field(default=Path("evals/suites.toml"), description="suites, metrics and thresholds")
    baseline: Path | None = Field(
        default=None, description="stored results to compare against; default: the suites file's run.baseline"
    )
    cache: bool = Field(default=True, description="reuse results of unchanged cases from <state_dir>/evals/cache")


ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class FinetuneSettings(_Section):
    """LoRA fine-tuning (peft) of `model.name`: CPU for the tiny default, GPUs through `accelerate launch`."""

    rank: int = Field(default=16, ge=1, le=1024, description="LoRA rank")
    alpha: int = Field(default=32, ge=1, description="LoRA alpha (the update is scaled by alpha / rank)")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="LoRA dropout")
    target_modules: list[str] = Field(
        default_factory=lambda: list(ALL_LINEAR), min_length=1, description="module names LoRA wraps"
    )
    epochs: float = Field(default=1.0, gt=0, description="passes over the training set, unless max_steps is set")
    max_steps: int | None = Field(default=None, ge=1, description="optimizer steps; overrides epochs")
    learning_rate: float = Field(default=1e-2, gt=0, le=1.0, description="peak; cosine schedule after the warm-up")
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0, description="share of steps spent warming up, linearly")
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW weight decay")
    batch_size: int = Field(default=8, ge=1, le=4096, description="sequences per device per step")
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024, description="micro-steps per optimizer step")
    max_seq_length: int = Field(
        default=1600,
        ge=32,
        description="prompt + answer tokens; a longer prompt is cut from the left, as generation does",
    )
    packing: bool = Field(default=False, description="pack several examples into one sequence (no padding)")
    seed: int = Field(default=1234, description="seeds training and the order of batches")
    bf16: Literal["auto", "on", "off"] = Field(default="auto", description="auto: on where the GPU supports it")
    gradient_checkpointing: Literal["auto", "on", "off"] = Field(default="auto", description="auto: on GPU only")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="auto: a CUDA or MPS device when there is one"
    )
    use_feedback: bool = Field(default=True, description="train on liked and corrected answers from `feedback`")
    retrain_feedback_rows: int = Field(
        default=50, ge=1, description="usable new feedback rows since the champion's training that make a retrain due"
    )
    promote_on: list[str] = Field(
        default_factory=lambda: ["likelihood.reference_loss"],
        min_length=1,
        description="'<suite>.<metric>' the candidate must beat base and champion on (direction from the metric)",
    )
    min_improvement: float = Field(
        default=0.02, ge=0.0, description="relative margin by which the candidate must beat each rival"
    )
    eval_suites: list[str] = Field(
        default_factory=lambda: ["likelihood"],
        description="eval suites run for base, candidate and champion (the promote_on suites at least)",
    )

    @model_validator(mode="after")
    def _promote_on_suites_run(self) -> FinetuneSettings:
        missing = sorted({m.partition(".")[0] for m in self.promote_on} - set(self.eval_suites))
        if missing:
            raise ValueError(f"promote_on names suites {missing} that eval_suites does not run")
        return self


class RegistrySettings(_Section):
    """The model registry: MLflow, embedded (SQLite + local artifacts) unless `tracking_uri` names a server."""

    tracking_uri: str | None = Field(
        default=None,
        description="an MLflow tracking server URI; default $MLFLOW_TRACKING_URI, else sqlite:///<state_dir>/mlflow/mlflow.db",
    )
    artifact_dir: Path | None = Field(default=None, description="default <state_dir>/mlflow/artifacts")
    experiment: str = Field(
        default="docs-assistant-finetune", min_length=1, description="the MLflow experiment of runs"
    )
    model_name: str = Field(default="docs-assistant-adapter", min_length=1, description="the registered model")


class ReleaseSettings(_Section):
    """A release: the next semantic version from conventional commits (commitizen), changelog, annotated tag."""

    tag_prefix: str = Field(default="v", description="tags are <tag_prefix><version>, e.g. v1.2.0")
    changelog: Path = Field(default=Path("CHANGELOG.md"), description="updated on every release")
    require_eval_gate: bool = Field(
        default=True, description="refuse to release unless reports/eval_prompts/summary.json says the gate passed"
    )


class ImageSettings(_Section):
    """The container image: built once with the Docker SDK, pushed, then promoted by digest."""

    repository: str = Field(default="docs-assistant", min_length=1, description="the image name, without registry")
    registry: str | None = Field(
        default=None, description="where images are pushed, e.g. ghcr.io/OWNER or localhost:5000; unset = build only"
    )
    username: str | None = Field(default=None, description="registry user; set DOCS_ASSISTANT_IMAGE__USERNAME")
    password: SecretStr | None = Field(
        default=None, description="registry password or token; set DOCS_ASSISTANT_IMAGE__PASSWORD (never a build arg)"
    )
    adapter_alias: str | None = Field(
        default="champion",
        description="the registry alias whose adapter the image carries (model.adapter_alias/adapter_path win; "
        "empty: no adapter unless those name one); the release pins it and the image carries that version",
    )
    dockerfile: Path = Field(default=Path("deploy/Dockerfile"), description="relative to the repository root")
    base_image: str = Field(default="python:3.11-slim", description="any Debian-like image with python3 and venv")
    torch_flavour: Literal["cpu", "cuda"] = Field(
        default="cpu", description="cpu: torch from torch_index, no CUDA libraries; cuda: torch as locked (PyPI)"
    )
    torch_index: str = Field(default="https://download.pytorch.org/whl/cpu", description="where cpu torch comes from")
    torch_wheels: Path | None = Field(
        default=None, description="a local folder of torch wheels used instead of torch_index (offline builds)"
    )
    network_mode: str | None = Field(
        default=None, description="the build's network, e.g. 'host' where containers reach PyPI only through the host"
    )

    @field_validator("adapter_alias")
    @classmethod
    def _blank_is_none(cls, alias: str | None) -> str | None:
        """`DOCS_ASSISTANT_IMAGE__ADAPTER_ALIAS=` (empty) means no adapter, as an unset alias does."""
        return alias or None


class Settings(BaseSettings):
    """Everything configurable, in one place."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    paths: PathSettings = PathSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkSettings = ChunkSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    model: ModelSettings = ModelSettings()
    prompt: PromptSettings = PromptSettings()
    limits: LimitSettings = LimitSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    validation: ValidationSettings = ValidationSettings()
    serve: ServeSettings = ServeSettings()
    evals: EvalSettings = EvalSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    registry: RegistrySettings = RegistrySettings()
    release: ReleaseSettings = ReleaseSettings()
    image: ImageSettings = ImageSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, SecretFilesSource(settings_cls), toml)

    @cached_property
    def fingerprint(self) -> dict[str, Any]:
        """Settings that decide what the index holds; a change re-embeds everything."""
        return {
            "embedding_model": self.embedding.model,
            "chunk_size": self.chunking.size,
            "chunk_overlap": self.chunking.overlap,
        }


class SecretFilesSource(EnvSettingsSource):
    """Files named like a setting's environment variable, e.g. `/run/secrets/DOCS_ASSISTANT_SERVE__API_KEYS`.

    Docker swarm has no environment variables from secrets: the deployer mounts each secret as a file named
    after the variable it stands for, and the file's text is read as that variable's value (below real
    environment variables, above the TOML file). The directory is `$DOCS_ASSISTANT_SECRETS_DIR`, default
    /run/secrets; only files whose names start with `DOCS_ASSISTANT_` are read.
    """

    def _load_env_vars(self) -> dict[str, str | None]:
        directory = Path(os.environ.get(SECRETS_DIR_ENV) or DEFAULT_SECRETS_DIR)
        try:
            files = [p for p in directory.iterdir() if p.name.startswith(ENV_PREFIX) and p.is_file()]
        except OSError:
            return {}
        return {p.name.lower(): p.read_text(encoding="utf-8").strip() for p in files}


def config_file() -> Path | None:
    raw = os.environ.get(CONFIG_FILE_ENV)
    if raw:
        path = Path(raw)
        if not path.is_file():
            raise ConfigError(
                "config file not found", where=f"{CONFIG_FILE_ENV}={raw}", hint="fix the path or unset it"
            )
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _setting_name(loc: tuple[int | str, ...]) -> str:
    dotted = ".".join(str(p) for p in loc)
    env = ENV_PREFIX + "__".join(str(p).upper() for p in loc)
    return f"setting '{dotted}' (env {env})"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's report into one clear error per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown setting"
            problems.append(f"{_setting_name(err['loc'])}: {msg}; got {err.get('input')!r}")
        source = config_file()
        raise ConfigError(
            "; ".join(problems),
            where=str(source) if source else None,
            hint="every setting is in docs/reference/configuration.md",
        ) from None
    except Exception as exc:  # a TOML syntax error, for instance
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"cannot read settings: {exc}", where=config_file()) from None


def with_json_overrides(settings: Settings, section: str, raw: str, option: str) -> Settings:
    """A JSON object over one settings section, on top of every other source (a reusable workflow's input).

    `option` names where the JSON came from (`--overrides`), so a bad value is reported against it.
    """
    try:
        override = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc.msg} at column {exc.colno}", where=option) from None
    if not isinstance(override, dict):
        raise ConfigError(f'must be a JSON object such as {{"key": value}} (settings of [{section}])', where=option)
    return load_settings(**{section: getattr(settings, section).model_dump() | override})
