"""The front proxy of a swarm environment: a TCP forwarder to the app service's tasks, stdlib only.

It publishes the environment's port (host mode) and, per client connection, resolves `BACKEND`
(`tasks.<service>:8000`, a DNS round-robin name that lists only running, healthy tasks) afresh, then
tries those addresses in random order, retrying for `RETRY_FOR` seconds while none accepts or one
closes before answering. After the first response bytes it pipes both ways. App deploys never touch
it, so a start-first rolling update of the app loses no request (see docs/promotion/swarm.md). It imports
nothing from the package: `python3 proxy.py` runs it from a bare Python image.
Settings (environment): BACKEND=host:port, PORT (listen, default 8000), RETRY_FOR (seconds, default 10).
"""

import asyncio
import os
import random
import signal
import socket
import sys
import time

CHUNK = 65536


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), "proxy:", *parts, file=sys.stderr, flush=True)


async def resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    addresses = list({info[4][0] for info in infos})
    random.shuffle(addresses)
    return addresses


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def handle(client_r, client_w, host: str, port: int, retry_for: float) -> None:
    try:  # the client speaks first (HTTP), so a failed backend can be retried with the same bytes
        first = await asyncio.wait_for(client_r.read(CHUNK), 60)
    except (TimeoutError, OSError):
        first = b""
    if not first:
        client_w.close()
        return
    deadline, attempts = time.monotonic() + retry_for, 0
    while time.monotonic() < deadline:
        for address in await resolve(host, port):
            attempts += 1
            try:
                backend_r, backend_w = await asyncio.wait_for(asyncio.open_connection(address, port), 2)
                backend_w.write(first)
                await backend_w.drain()
                head = await backend_r.read(CHUNK)
            except (TimeoutError, OSError) as exc:
                log(f"backend {address}:{port} failed ({type(exc).__name__}: {exc}); trying another")
                continue
            if not head:
                log(f"backend {address}:{port} closed before answering; trying another")
                backend_w.close()
                continue
            client_w.write(head)
            await client_w.drain()
            await asyncio.gather(pipe(client_r, backend_w), pipe(backend_r, client_w))
            return
        await asyncio.sleep(0.1)
    log(f"no backend of {host}:{port} answered within {retry_for} s ({attempts} attempts)")
    client_w.close()


async def serve(listen_port: int, backend: str, retry_for: float) -> None:
    host, _, port = backend.rpartition(":")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, host, int(port), retry_for),
        "0.0.0.0",  # noqa: S104 -- in its container: the published port must reach it
        listen_port,
        reuse_address=True,
    )
    log(f"listening on 0.0.0.0:{listen_port}, forwarding to {host}:{port}")
    async with server:
        await stop.wait()
    log("stopped")


def main() -> int:
    backend = os.environ.get("BACKEND", "")
    if not backend.rpartition(":")[2].isdigit() or not backend.rpartition(":")[0]:
        print(f"BACKEND={backend!r}: set it to host:port, e.g. tasks.docs-assistant-dev:8000", file=sys.stderr)
        return 2
    asyncio.run(serve(int(os.environ.get("PORT", "8000")), backend, float(os.environ.get("RETRY_FOR", "10"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
