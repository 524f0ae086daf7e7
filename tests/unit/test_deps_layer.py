"""The image's deps layer is keyed on what it installs, not on the project's version (release/image.py)."""

from __future__ import annotations

from docs_assistant.release.image import deps_pyproject

from ..conftest import REPO  # noqa: TID252 - the repository root

PYPROJECT = (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_a_version_bump_leaves_the_deps_layer_input_unchanged() -> None:
    bumped = PYPROJECT.replace('version = "0.1.0"', 'version = "0.2.0"', 1)
    assert bumped != PYPROJECT
    assert deps_pyproject(bumped) == deps_pyproject(PYPROJECT)


def test_only_the_projects_own_version_line_changes() -> None:
    text = '[tool.x]\nversion = "7"\n\n[project]\nname = "p"\nversion = "1.2.3"\ndependencies = ["a>=1.2.3"]\n\n[tool.y]\nversion = "9"\n'
    assert deps_pyproject(text) == text.replace('version = "1.2.3"', 'version = "0"')
    changed = [line for line in deps_pyproject(PYPROJECT).splitlines() if line not in PYPROJECT.splitlines()]
    assert changed == ['version = "0"']


def test_a_dependency_change_still_changes_it() -> None:
    edited = PYPROJECT.replace("dependencies = [", 'dependencies = [\n  "new-package>=1",', 1)
    assert deps_pyproject(edited) != deps_pyproject(PYPROJECT)
