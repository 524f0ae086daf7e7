"""The SIGTERM test's server process: the real app, tiny model and index, run by `serve.server.serve`.

Generation waits while the file named by argv[1] exists, so the test decides when an answer is in
flight; a generation that finds it there first creates `<argv[1]>.generating`, so the test knows the
request was admitted (the HTTP in-flight gauge rises earlier, before admission, and a SIGTERM in that
gap rightly refuses the request instead). The bound port is printed on the first line of stdout.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

from docs_assistant.config import load_settings
from docs_assistant.rag.llm import load_llm
from docs_assistant.serve.app import create_app
from docs_assistant.serve.logs import configure_logging
from docs_assistant.serve.server import serve


class HeldLLM:
    def __init__(self, llm: Any, hold: Path):
        self.llm, self.hold, self.info = llm, hold, llm.info

    def generate(self, prompt: str, **kwargs: Any) -> Any:
        if self.hold.exists():
            self.hold.with_name(f"{self.hold.name}.generating").touch()
        deadline = time.monotonic() + 60
        while self.hold.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.llm.generate(prompt, **kwargs)


def main() -> None:
    settings = load_settings()
    llm = HeldLLM(load_llm(settings.model, settings.paths.models_dir), Path(sys.argv[1]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    configure_logging()
    serve(create_app(settings, llm=llm), settings, host="127.0.0.1", port=0, sock=sock)


if __name__ == "__main__":
    main()
