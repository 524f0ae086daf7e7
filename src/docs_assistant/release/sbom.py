"""The image's SBOM: CycloneDX, of the Python packages really installed in the image.

Not from the lock: the CPU image swaps torch's CUDA build for a CPU wheel, so only the image knows what
it holds. The package metadata (each `*.dist-info/METADATA`, a few MB) is copied out of a throw-away
container into an empty virtual environment on the host, and `cyclonedx-py environment` reads that
environment as it would any other: licences, versions and PURLs come from the packages' own metadata.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path
from typing import Any

from docs_assistant.errors import ImageError
from docs_assistant.io import atomic_write_text, sha256_file

#: where the export below leaves its archive inside the (stopped) container
ARCHIVE = "/tmp/dist-info.tar"  # noqa: S108 - inside the throw-away container, not on the host
#: runs inside the image: a tar of every installed distribution's metadata
EXPORT = f"""
import sysconfig, tarfile, pathlib
site = pathlib.Path(sysconfig.get_paths()["purelib"])
with tarfile.open("{ARCHIVE}", mode="w") as tar:
    for info in sorted(site.glob("*.dist-info")):
        for name in ("METADATA", "licenses", "LICENSE", "LICENSE.txt", "top_level.txt"):
            if (info / name).exists():
                tar.add(info / name, arcname=f"{{info.name}}/{{name}}")
"""


def _export_metadata(client: Any, image_id: str, site: Path) -> int:
    """Unpack the image's dist-info metadata into `site`; returns how many distributions there are."""
    container = client.containers.create(image_id, entrypoint=["python", "-c", EXPORT], network_mode="none")
    try:
        container.start()
        status = container.wait(timeout=300)
        if status.get("StatusCode"):
            logs = container.logs().decode(errors="replace")[-2000:]
            raise ImageError(f"cannot read the image's installed packages: {logs}", where=image_id)
        chunks, _ = container.get_archive(ARCHIVE)
        outer = io.BytesIO(b"".join(chunks))  # get_archive wraps the file in a tar of its own
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=outer) as wrapper:
        member = wrapper.extractfile(Path(ARCHIVE).name)
        assert member is not None
        with tarfile.open(fileobj=io.BytesIO(member.read())) as tar:
            # plain files and folders under `site` only; the "data" filter as well where Python has it
            # (3.11.4 on: a Debian 3.11.2 has not, and the README's commands run on whatever python3 is)
            members = [
                m
                for m in tar.getmembers()
                if (m.isfile() or m.isdir()) and not Path(m.name).is_absolute() and ".." not in Path(m.name).parts
            ]
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(site, members=members, **safe)  # noqa: S202 - members checked above
    return sum(1 for _ in site.glob("*.dist-info"))


def write_sbom(client: Any, image_id: str, dest: Path, *, pyproject: Path | None = None) -> dict[str, Any]:
    """Write the CycloneDX JSON SBOM of `image_id` to `dest` atomically; returns what the manifest records."""
    with tempfile.TemporaryDirectory(prefix="docs-assistant-sbom-") as tmp:
        env_dir = Path(tmp) / "image-env"
        venv.EnvBuilder(with_pip=False).create(env_dir)
        python = env_dir / "bin" / "python"
        site = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        packages = _export_metadata(client, image_id, site)
        command = [sys.executable, "-m", "cyclonedx_py", "environment", "--of", "JSON", "-o", "-"]
        if pyproject is not None:
            command += ["--pyproject", str(pyproject)]
        result = subprocess.run([*command, str(env_dir)], capture_output=True, text=True, check=False)
        if result.returncode:
            raise ImageError(f"cyclonedx-py failed: {result.stderr.strip()[-2000:]}", where=image_id)
    bom = json.loads(result.stdout)
    atomic_write_text(dest, json.dumps(bom, indent=2) + "\n")
    return {
        "path": str(dest),
        "format": f"CycloneDX {bom.get('specVersion')}",
        "components": len(bom.get("components", [])),
        "packages_in_image": packages,
        "sha256": sha256_file(dest),
    }
