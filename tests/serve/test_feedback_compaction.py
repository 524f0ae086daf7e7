"""The feedback table stays compact: each post commits one file, and the service merges them in the background.

A scan opens every file, so uncompacted feedback made reading the table tens of times slower (the
`feedback` benchmark measures it). These tests check the bound and what compaction must never cost: a
row the service acknowledged is on disk before the 201, whether a compaction runs beside the posts or
the process is killed in the middle of one, and earlier table versions stay readable.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from docs_assistant.data.store import FEEDBACK, FeatureStore
from docs_assistant.serve.app import create_app

from .conftest import KEY, running, wait_ready
from .test_shutdown import SERVER, server_process, wait_until

pytestmark = pytest.mark.integration
QUESTION = "How do I install it?"
EVERY = 5


def fragments(project: Any) -> int:
    table = FeatureStore(project.settings().paths.store_uri).open(FEEDBACK)
    return table.stats()["fragment_stats"]["num_fragments"]


def stored_ids(project: Any) -> Counter[str]:
    """Every id in the table, read in full from a fresh connection (text columns too, so every file is read)."""
    rows = FeatureStore(project.settings().paths.store_uri).read(FEEDBACK)
    assert rows.column("answer").null_count == 0  # each row still carries the answer it rates
    return Counter(rows.column("id").to_pylist())


@contextmanager
def service_on_loopback(project: Any, embedder: Any, llm: Any, every: int) -> Iterator[tuple[Any, httpx.Client]]:
    settings = project.settings(serve={"api_keys": [KEY], "feedback_compact_every": every, "max_queue": 64})
    app = create_app(settings, embedder=embedder, llm=llm)
    with running(app) as url:
        wait_ready(url)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
            yield app.state.service, client


def rate(client: httpx.Client, answer_id: str, n: int) -> str:
    response = client.post("/v1/feedback", json={"answer_id": answer_id, "rating": 1, "correction": f"note {n}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_many_posts_leave_few_files_and_every_row(serve_project, embedder, tiny_llm) -> None:
    """Past `feedback_compact_every` posts the files are merged; without it this table would hold 23+ files."""
    with service_on_loopback(serve_project, embedder, tiny_llm, EVERY) as (service, client):
        answer_id = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]
        posted = [rate(client, answer_id, n) for n in range(4 * EVERY + 3)]
        assert service.wait_feedback_compaction(60)
        # compacted once per EVERY posts: one merged file plus fewer than EVERY posted since
        assert fragments(serve_project) <= EVERY
        stored = stored_ids(serve_project)
        assert all(stored[i] == 1 for i in posted), "a posted row is missing or duplicated"

        service.close_feedback(60)  # what a stop does after the drain
        assert fragments(serve_project) == 1
        assert stored_ids(serve_project) == stored


def test_a_stopping_service_merges_what_is_left(serve_project, embedder, tiny_llm) -> None:
    """Fewer posts than `feedback_compact_every`: nothing merges while serving; the stop, after the drain, does."""
    with service_on_loopback(serve_project, embedder, tiny_llm, 50) as (_service, client):
        answer_id = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]
        posted = [rate(client, answer_id, n) for n in range(EVERY + 2)]
        assert fragments(serve_project) > EVERY  # one file per post while it serves
    assert fragments(serve_project) == 1  # the server stopped: its lifespan ran `Service.close_feedback`
    stored = stored_ids(serve_project)
    assert all(stored[i] == 1 for i in posted)


def test_a_compaction_beside_posts_loses_nothing(serve_project, embedder, tiny_llm) -> None:
    """Four clients post while compactions run back to back (the service's own, every 2 posts, and a loop)."""
    store = FeatureStore(serve_project.settings().paths.store_uri)
    with service_on_loopback(serve_project, embedder, tiny_llm, 2) as (service, client):
        answer_id = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]
        rate(client, answer_id, -1)  # the table exists from here on
        before = store.open(FEEDBACK)
        version, rows_then = before.version, before.count_rows()
        acknowledged: list[str] = []
        done = threading.Event()

        def post(worker: int) -> None:
            with httpx.Client(base_url=str(client.base_url), headers=client.headers, timeout=60) as own:
                acknowledged.extend(rate(own, answer_id, worker * 100 + n) for n in range(12))

        compactions = 0

        def compact() -> None:
            nonlocal compactions
            while not done.is_set():
                service.compact_feedback()
                compactions += 1

        compactor = threading.Thread(target=compact)
        compactor.start()
        posters = [threading.Thread(target=post, args=(w,)) for w in range(4)]
        try:
            for t in posters:
                t.start()
            for t in posters:
                t.join(120)
        finally:
            done.set()
            compactor.join(60)
        assert service.wait_feedback_compaction(60)
    assert len(acknowledged) == 48
    assert compactions >= 1
    stored = stored_ids(serve_project)
    assert all(stored[i] == 1 for i in acknowledged), "an acknowledged row is missing or duplicated"
    assert store.open(FEEDBACK).count_rows() == rows_then + 48
    assert store.read(FEEDBACK, version=version).num_rows == rows_then  # compaction keeps older versions


def test_kill_9_during_compactions_loses_no_acknowledged_row(serve_project, tmp_path) -> None:
    """A killed server (compacting every 2 posts) keeps every row it said 201 for; the next one tidies up."""
    env = os.environ | serve_project.env() | {"DOCS_ASSISTANT_SERVE__FEEDBACK_COMPACT_EVERY": "2"}
    acknowledged: list[str] = []
    with server_process([sys.executable, str(SERVER), str(tmp_path / "no-hold")], env, tmp_path / "log") as proc:
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        wait_until(lambda: _listening(url), "the server to listen", within=60)
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=60) as client:
            answer_id = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]

        def post(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=60) as own:
                for n in range(1000):
                    try:
                        response = own.post("/v1/feedback", json={"answer_id": answer_id, "rating": worker % 2})
                    except httpx.TransportError:
                        return  # killed: this post was never acknowledged
                    assert response.status_code == 201, (n, response.text)
                    acknowledged.append(response.json()["id"])

        posters = [threading.Thread(target=post, args=(w,)) for w in range(3)]
        for t in posters:
            t.start()
        wait_until(lambda: len(acknowledged) >= 40, "40 acknowledged posts", within=120)
        proc.kill()  # SIGKILL: no drain, no shutdown compaction, a compaction may be half done
        for t in posters:
            t.join(60)
    stored = stored_ids(serve_project)
    assert all(stored[i] == 1 for i in acknowledged), "an acknowledged row was lost"


def test_files_an_earlier_process_left_are_compacted_on_the_next_post(serve_project, embedder, tiny_llm) -> None:
    """With compaction off (0) every post adds a file; the next service with it on merges them on its first post."""
    with service_on_loopback(serve_project, embedder, tiny_llm, 0) as (_service, client):
        answer_id = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]
        posted = [rate(client, answer_id, n) for n in range(EVERY + 2)]
    assert fragments(serve_project) > EVERY  # the setting's 0 really leaves them
    with service_on_loopback(serve_project, embedder, tiny_llm, EVERY) as (service, client):
        answer_id = client.post("/v1/answer", json={"question": QUESTION}).json()["id"]
        posted.append(rate(client, answer_id, 99))
        assert service.wait_feedback_compaction(60)
    assert fragments(serve_project) <= 2
    stored = stored_ids(serve_project)
    assert all(stored[i] == 1 for i in posted)


def _listening(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
