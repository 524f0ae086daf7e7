"""The documentation: the site builds strictly, a broken link fails it, the README stays short and linked right,
and the configuration reference is the settings model's own rendering."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docs_assistant.docs_reference import REFERENCE_PAGE, REGENERATE, config_reference_markdown, type_name

REPO = Path(__file__).resolve().parents[2]
README_MAX_LINES = 150
#: a Markdown link's target: `[text](target)` (images too); autolinks and reference links are not used here
LINK = re.compile(r"\]\(([^)\s]+)\)")


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the site rooted at `root` (its mkdocs.yml), as `nox -s docs` runs it."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(root / "mkdocs.yml")]
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [*command, "--site-dir", str(site)], cwd=root, capture_output=True, text=True, check=False, env=env
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = mkdocs_build(REPO, tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "WARNING" not in built.stderr, built.stderr  # strict fails on warnings; INFO-level notes are fine
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "reference" / "configuration" / "index.html").is_file()


@pytest.mark.parametrize(
    ("link", "named"),
    [("missing-page.md", "missing-page.md"), ("service.md#no-such-heading", "#no-such-heading")],
    ids=["page", "anchor"],
)
def test_a_broken_link_fails_the_build_naming_the_page_and_the_link(tmp_path: Path, link: str, named: str) -> None:
    """The site's validation is what makes links trustworthy: prove a planted bad link or anchor stops the build."""
    root = tmp_path / "copy"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy2(REPO / "mkdocs.yml", root / "mkdocs.yml")
    page = root / "docs" / "app" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + f"\nSee [this]({link}).\n", encoding="utf-8")
    built = mkdocs_build(root, tmp_path / "site")
    assert built.returncode != 0, "a broken link must fail the strict build"
    complaint = [line for line in built.stderr.splitlines() if "WARNING" in line and named in line]
    assert complaint, built.stderr
    assert "app/index.md" in complaint[0], complaint[0]


def relative_links(markdown: str) -> list[str]:
    """Link targets that point into the tree: no URL scheme, no mail, no in-page anchor alone."""
    targets = (t for t in LINK.findall(markdown) if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#"))
    return [t.split("#", 1)[0] for t in targets]


def test_the_readme_is_short_and_every_relative_link_resolves() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = len(readme.splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, at most {README_MAX_LINES}: move detail to docs/"
    missing = [t for t in relative_links(readme) if not (REPO / t).exists()]
    assert not missing, f"README.md links files that are not in the tree: {missing}"


def test_relative_links_are_found_and_urls_are_left_alone() -> None:
    text = "[a](docs/x.md#y) [b](https://example.com/z.md) [c](#top) ![d](img.png) [e](mailto:a@example.com)"
    assert relative_links(text) == ["docs/x.md", "img.png"]


def test_the_configuration_reference_is_the_settings_models_rendering() -> None:
    committed = (REPO / REFERENCE_PAGE).read_text(encoding="utf-8")
    assert committed == config_reference_markdown(), (
        f"{REFERENCE_PAGE} differs from the settings model: regenerate it with `{REGENERATE}` (repository root)"
    )


def test_reference_type_names_cover_the_settings_and_refuse_the_unknown() -> None:
    assert type_name(int | None) == "integer, optional"
    assert type_name(list[str]) == "list of string (JSON)"
    with pytest.raises(TypeError, match="no reader's name for the type"):
        type_name(complex)
