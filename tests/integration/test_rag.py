"""The RAG pipeline end to end on the real tiny model, embedder and LanceDB."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from docs_assistant.config import ModelSettings
from docs_assistant.errors import ModelError, PromptError
from docs_assistant.rag.context import ContextError
from docs_assistant.rag.llm import LocalLLM, OpenAICompatibleLLM
from docs_assistant.rag.pipeline import QuestionError, RagPipeline
from docs_assistant.rag.tiny_model import ensure_tiny_model, tiny_model_revision

pytestmark = pytest.mark.integration


@pytest.fixture
def rag(indexed_project, embedder) -> RagPipeline:
    return RagPipeline(indexed_project.settings(), embedder=embedder)


def test_answer_carries_sources_prompt_model_and_timings(rag: RagPipeline) -> None:
    answer = rag.answer("How do I get the product running on a Linux server?")
    assert answer.text
    assert len(answer.sources) == 5
    assert all(s["doc_id"] and s["title"] and s["source"] for s in answer.sources)
    assert answer.prompt == {"id": "rag-answer", "version": "1", "hash": rag.prompt.hash}
    assert answer.model["name"] == "tiny-random-llama"
    assert answer.model["revision"] == tiny_model_revision()
    assert set(answer.timings_ms) >= {"embed_ms", "search_ms", "render_ms", "generate_ms", "total_ms"}
    assert answer.tokens["completion"] > 0
    assert answer.index_version >= 1


def test_context_is_fitted_to_the_input_budget_lowest_ranked_chunks_dropped(indexed_project, embedder) -> None:
    budget = 400  # the template and the question take ~220 byte tokens: room for about one chunk
    rag = RagPipeline(indexed_project.settings(model={"max_input_tokens": budget}), embedder=embedder)
    answer = rag.answer("How do I get the product running on a Linux server?")
    fit = answer.context
    assert fit["budget"] == budget
    assert answer.tokens["prompt"] == fit["prompt_tokens"] <= budget  # the model read the whole fitted prompt
    assert fit["chunks_retrieved"] == len(answer.sources) == 5
    assert fit["chunks_kept"] >= 1
    assert fit["chunks_dropped"] >= 1
    assert fit["chunks_kept"] + fit["chunks_dropped"] == 5


def test_question_with_instructions_over_the_budget_names_the_setting(indexed_project, embedder) -> None:
    rag = RagPipeline(indexed_project.settings(model={"max_input_tokens": 200}), embedder=embedder)
    with pytest.raises(ContextError, match=r"model\.max_input_tokens.*over the input budget of 200"):
        rag.answer("How do I get the product running on a Linux server? " * 3)


def test_greedy_generation_is_deterministic(rag: RagPipeline) -> None:
    question = "What port does the service listen on by default?"
    assert rag.answer(question).text == rag.answer(question).text


def test_empty_question_is_rejected(rag: RagPipeline) -> None:
    with pytest.raises(QuestionError, match="field 'question': must not be empty"):
        rag.answer("   ")


def test_one_megabyte_question_is_rejected_before_any_work(rag: RagPipeline) -> None:
    with pytest.raises(QuestionError, match=r"too long: 1048576 characters, the limit is 2000"):
        rag.answer("x" * 1_048_576)


def test_unknown_prompt_version_fails_at_start(indexed_project, embedder) -> None:
    settings = indexed_project.settings(prompt={"version": "42"})
    with pytest.raises(PromptError, match="unknown prompt rag-answer v42"):
        RagPipeline(settings, embedder=embedder, llm=object())


def test_tiny_model_is_saved_then_loaded_like_any_checkpoint(models_dir: Path) -> None:
    path = ensure_tiny_model(models_dir)
    assert (path / "model.safetensors").is_file()
    assert not list(path.glob("*.bin"))
    assert ensure_tiny_model(models_dir) == path  # second call loads, does not rebuild
    llm = LocalLLM(ModelSettings(name=str(path)), models_dir)
    assert llm.generate("Hello").completion_tokens > 0


def test_missing_model_path_names_the_setting(models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        LocalLLM(ModelSettings(name=str(tmp_path / "no-such-model")), models_dir)
    assert "DOCS_ASSISTANT_MODEL__NAME" in str(err.value)
    assert "no-such-model" in str(err.value)


def test_lora_adapter_is_attached_and_changes_the_output(models_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(ensure_tiny_model(models_dir))
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # a trained adapter, in effect: B starts at zero
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    plain = LocalLLM(ModelSettings(), models_dir)
    adapted = LocalLLM(ModelSettings(adapter_path=tmp_path / "adapter"), models_dir)
    assert adapted.info.adapter == str(tmp_path / "adapter")
    prompt = "Question: how do I rotate the access token?\nAnswer:"
    assert adapted.generate(prompt).text != plain.generate(prompt).text


def test_missing_adapter_is_a_clear_error(models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="DOCS_ASSISTANT_MODEL__ADAPTER_PATH"):
        LocalLLM(ModelSettings(adapter_path=tmp_path / "none"), models_dir)


class _ChatHandler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        reply = {
            "choices": [{"message": {"role": "assistant", "content": " It listens on port 7600. "}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 6},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_compatible_backend_over_http(chat_server: str) -> None:
    settings = ModelSettings(backend="openai", name="served-model", openai_base_url=chat_server, openai_api_key="k-1")
    generation = OpenAICompatibleLLM(settings).generate("What port?", max_new_tokens=9)
    assert generation.text == "It listens on port 7600."
    assert (generation.prompt_tokens, generation.completion_tokens) == (11, 6)
    sent = _ChatHandler.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == "Bearer k-1"
    assert sent["body"]["max_tokens"] == 9
    assert sent["body"]["messages"] == [{"role": "user", "content": "What port?"}]


def test_openai_backend_unreachable_names_the_setting() -> None:
    settings = ModelSettings(backend="openai", openai_base_url="http://127.0.0.1:9/v1", request_timeout_s=2)
    with pytest.raises(ModelError, match="DOCS_ASSISTANT_MODEL__OPENAI_BASE_URL"):
        OpenAICompatibleLLM(settings).generate("hi")
