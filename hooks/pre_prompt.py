"""Turn this working tree into the cookiecutter template, inside cookiecutter's temporary copy.

The repository is a working project, not a template: no second copy is committed. Cookiecutter runs this
hook in a throwaway copy (the working directory); it moves the project into `{{cookiecutter.project_slug}}/`,
protects every existing `{{ }}` / `{% %}` (GitHub expressions, Jinja) from rendering, then puts template
variables where the default names were. Reusable workflows stay in the template repository: generated
projects call them by `OWNER/REPO/.github/workflows/<stage>.yml@REF`.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
SKIP_NAMES = {
    ".git", ".venv", ".nox", "var", "reports", "hooks", "cookiecutter.json", "__pycache__",
    ".pytest_cache", ".ruff_cache", ".mypy_cache", "build", "dist", "site", ".idea", ".vscode",
}  # fmt: skip
#: template-repository only: tests of the template itself, the reusable-workflow library, the template's docs page
SKIP_PATHS = {
    "tests/template", "tests/workflows", ".github/actions", ".github/workflows/README.md", "benchmarks/bench_template.py",
    ".github/workflows/template.yml", "docs/template",
}  # fmt: skip
SKIP_SUFFIXES = (".egg-info", ".pyc")

#: (literal in this tree, what replaces it); longest first so "docs-assistant" never eats a longer name
NAMES = (
    ("docs-assistant/docs-assistant", "{{ cookiecutter.workflows_repo }}"),
    ("Docs Assistant maintainers", "{{ cookiecutter.author_name }}"),
    ("maintainers@example.com", "{{ cookiecutter.author_email }}"),
    ("Docs Assistant", "{{ cookiecutter.project_name }}"),
    ("docs-assistant", "{{ cookiecutter.project_slug }}"),
    ("docs_assistant", "{{ cookiecutter.package_name }}"),
    ("DOCS_ASSISTANT", "{{ cookiecutter.package_name.upper() }}"),
)
#: answers typed as free text: escaped everywhere but in Markdown, with Jinja's own `replace` filter (no
#: local extension, so cruft, which imports none, renders the published template too)
FREE_TEXT = ("project_name", "author_name", "author_email", "description")
#: the body of a double-quoted string literal, valid in Python, TOML, JSON and YAML: `\` and `"` escaped
QUOTED = r' | replace("\\", "\\\\") | replace("\"", "\\\"")'
#: cookiecutter.json's default description: where the generated README says it, the answer goes
DEFAULT_DESCRIPTION = "A RAG service over product documentation, with its whole LLMOps life cycle as code."
#: the generated project's README (this tree's README describes the template, and links files not shipped)
PROJECT_README = "hooks/project_README.md"
DESCRIPTION = re.compile(r'^description = ".*"$', re.MULTILINE)
# a mark with the braces around it: `{"a": {}}` ends in `{}}`, and escaping only its `}}` would leave a `{`
# right before the inserted `{{`, which Jinja then reads as `{{{`
JINJA_MARKS = re.compile(r"(?:[{}]*(?:\{\{|\}\}|\{%|%\}|\{#|#\})[{}]*)+")
LOCAL_WORKFLOW = re.compile(r"uses:\s*\./\.github/workflows/([\w.-]+\.ya?ml)")
PYTHON_VERSION = re.compile(r'(python-version:\s*(?:default:\s*)?)["\']?3\.11["\']?')


def escape_jinja(text: str) -> str:
    """Make existing Jinja/GitHub-expression markers render as themselves, in one pass."""
    return JINJA_MARKS.sub(lambda m: "{{ '" + m.group(0) + "' }}", text)


def templatize(text: str, relpath: str) -> str:
    text = escape_jinja(text)
    if relpath == "README.md":
        text = text.replace(DEFAULT_DESCRIPTION, "{{ cookiecutter.description }}")
    if relpath == "pyproject.toml":
        text = DESCRIPTION.sub('description = "{{ cookiecutter.description }}"', text, count=1)
    if relpath.startswith(".github/"):
        text = LOCAL_WORKFLOW.sub(
            r"uses: {{ cookiecutter.workflows_repo }}/.github/workflows/\1@{{ cookiecutter.workflows_ref }}", text
        )
        text = PYTHON_VERSION.sub(r'\1"{{ cookiecutter.python_version }}"', text)
    for literal, variable in NAMES:
        text = text.replace(literal, variable)
    if not relpath.endswith(".md"):  # inside string literals of Python, TOML, JSON or YAML: escaped there
        for name in FREE_TEXT:
            text = text.replace(f"{{{{ cookiecutter.{name} }}}}", f"{{{{ cookiecutter.{name}{QUOTED} }}}}")
    return text


def is_reusable_workflow(path: Path, text: str) -> bool:
    return path.parent.as_posix().endswith(".github/workflows") and re.search(r"^\s*workflow_call:", text, re.M)


def skipped(relpath: str) -> bool:
    parts = relpath.split("/")
    if any(p in SKIP_NAMES or p.endswith(SKIP_SUFFIXES) for p in parts):
        return True
    return any(relpath == s or relpath.startswith(s + "/") for s in SKIP_PATHS)


def rename(relpath: str) -> str:
    for literal, variable in NAMES[3:]:
        relpath = relpath.replace(literal, variable.replace(" ", ""))
    return relpath


def build_template(root: Path) -> int:
    """Move every kept file of `root` into `root/TEMPLATE_DIR`, templatized; returns the file count."""
    target = root / TEMPLATE_DIR
    target.mkdir()
    count = 0
    for path in sorted(root.rglob("*")):
        relpath = path.relative_to(root).as_posix()
        if not path.is_file() or path.is_symlink() or relpath.startswith(TEMPLATE_DIR) or skipped(relpath):
            continue
        dest = target / rename(relpath)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = path.read_text(encoding="utf-8")
            if relpath == "README.md" and (root / PROJECT_README).is_file():
                text = (root / PROJECT_README).read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary: copied verbatim (and listed in _copy_without_render)
            shutil.copy2(path, dest)
            count += 1
            continue
        if is_reusable_workflow(path, text):
            continue
        dest.write_text(templatize(text, relpath), encoding="utf-8")
        shutil.copymode(path, dest)
        count += 1
    return count


#: the line of hooks/pre_gen_project.py that `record_locked_names` fills in
LOCKED_NAMES_LINE = "LOCKED_NAMES: frozenset[str] = frozenset()"
LOCK_PACKAGE = re.compile(r'^\[\[package\]\]\nname = "([^"]+)"', re.MULTILINE)


def locked_import_names(lock_text: str) -> list[str]:
    """The locked distributions as import names (`typing-extensions` -> `typing_extensions`), this project's own aside."""
    own = {literal for literal, _ in NAMES if literal.isidentifier()}
    names = {name.lower().replace("-", "_").replace(".", "_") for name in LOCK_PACKAGE.findall(lock_text)}
    return sorted(names - own)


def record_locked_names(root: Path) -> None:
    """Let pre_gen_project refuse a package name that would shadow a dependency (it cannot read uv.lock itself)."""
    lock, hook = root / "uv.lock", root / "hooks" / "pre_gen_project.py"
    if not lock.is_file() or not hook.is_file():
        return
    names = locked_import_names(lock.read_text(encoding="utf-8"))
    filled = f"LOCKED_NAMES: frozenset[str] = frozenset({tuple(names)!r})"
    hook.write_text(hook.read_text(encoding="utf-8").replace(LOCKED_NAMES_LINE, filled, 1), encoding="utf-8")


def main() -> int:
    record_locked_names(Path.cwd())
    count = build_template(Path.cwd())
    print(f"pre_prompt: template built from the working tree ({count} files)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
