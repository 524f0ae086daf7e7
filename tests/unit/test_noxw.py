"""The nox wrapper: pinned uv wheels, verified by hash, nothing installed into the system Python."""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import io
import json
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def noxw() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("noxw", str(REPO / "noxw"))
    spec = importlib.util.spec_from_loader("noxw", loader)
    assert spec
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def fake_wheel(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("uv", "uvx"):
            archive.writestr(f"uv-{version}.data/scripts/{name}", f"#!/bin/sh\necho {name}\n")
    return buffer.getvalue()


def test_every_pinned_wheel_has_a_sha256(noxw: ModuleType) -> None:
    assert noxw.platform_key() in noxw.UV_WHEELS  # the machine running the tests is covered
    for tag, digest in noxw.UV_WHEELS.values():
        assert tag
        assert len(digest) == 64
        int(digest, 16)


def serve(noxw: ModuleType, monkeypatch: pytest.MonkeyPatch, wheel: bytes) -> None:
    tag, _ = noxw.UV_WHEELS[noxw.platform_key()]
    filename = f"uv-{noxw.UV_VERSION}-py3-none-{tag}.whl"

    def fetch(url: str) -> bytes:
        if url.endswith("/uv/"):
            return json.dumps({"files": [{"filename": filename, "url": f"https://files/{filename}"}]}).encode()
        return wheel

    monkeypatch.setattr(noxw, "fetch", fetch)


def test_download_refuses_a_wheel_with_the_wrong_hash(
    noxw: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve(noxw, monkeypatch, fake_wheel(noxw.UV_VERSION))
    with pytest.raises(SystemExit, match="refusing to run it"):
        noxw.download_uv(tmp_path / "cache")
    assert not (tmp_path / "cache" / "uv").exists()


def test_download_unpacks_a_verified_wheel(noxw: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wheel = fake_wheel(noxw.UV_VERSION)
    key = noxw.platform_key()
    monkeypatch.setitem(noxw.UV_WHEELS, key, (noxw.UV_WHEELS[key][0], hashlib.sha256(wheel).hexdigest()))
    serve(noxw, monkeypatch, wheel)
    uv = noxw.download_uv(tmp_path / "cache")
    assert uv == tmp_path / "cache" / "uv"
    assert uv.read_text().endswith("echo uv\n")
    assert uv.stat().st_mode & 0o111


def test_uv_on_path_is_used_first(noxw: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOXW_UV", raising=False)
    monkeypatch.setattr(noxw.shutil, "which", lambda name: str(tmp_path / "bin" / name))
    assert noxw.find_uv() == tmp_path / "bin" / "uv"


def test_uv_wheel_pin_matches_the_real_index(noxw: ModuleType) -> None:
    """The pinned hash is the one PyPI serves (needs the package index, as installs do)."""
    tag, digest = noxw.UV_WHEELS[noxw.platform_key()]
    filename = f"uv-{noxw.UV_VERSION}-py3-none-{tag}.whl"
    try:
        page = json.loads(noxw.fetch("https://pypi.org/simple/uv/"))
    except OSError as exc:
        pytest.skip(f"package index unreachable: {exc}")
    served = {f["filename"]: f["hashes"]["sha256"] for f in page["files"]}
    assert served[filename] == digest
