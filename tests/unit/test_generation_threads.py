from __future__ import annotations

import os

from docs_assistant.serve.startup import generation_threads


def test_threads_split_the_cpus_between_concurrent_generations() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert generation_threads(0, 1) == cpus
    assert generation_threads(0, cpus) == 1
    assert generation_threads(0, cpus * 4) == 1  # never zero


def test_a_configured_count_wins() -> None:
    assert generation_threads(3, 64) == 3
