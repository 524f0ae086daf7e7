"""Validate the answers before anything is written; one clear message per bad answer, then exit 1."""

from __future__ import annotations

import keyword
import re
import sys

ANSWERS = {
    "project_name": "{{ cookiecutter.project_name }}",
    "project_slug": "{{ cookiecutter.project_slug }}",
    "package_name": "{{ cookiecutter.package_name }}",
    "author_email": "{{ cookiecutter.author_email }}",
    "github_owner": "{{ cookiecutter.github_owner }}",
    "workflows_repo": "{{ cookiecutter.workflows_repo }}",
    "workflows_ref": "{{ cookiecutter.workflows_ref }}",
    "container_registry": "{{ cookiecutter.container_registry }}",
    "base_model": "{{ cookiecutter.base_model }}",
    "base_model_revision": "{{ cookiecutter.base_model_revision }}",
}

SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPO = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
REF = re.compile(r"^[A-Za-z0-9._/-]+$")
REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")
REVISION = re.compile(r"^([0-9a-f]{7,40})?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def problems(a: dict[str, str]) -> list[str]:
    found = []
    if not a["project_name"].strip():
        found.append("project_name: must not be empty")
    if not SLUG.match(a["project_slug"]):
        found.append(f"project_slug {a['project_slug']!r}: use lowercase letters, digits and single '-'")
    pkg = a["package_name"]
    if not pkg.isidentifier() or keyword.iskeyword(pkg) or pkg != pkg.lower():
        found.append(f"package_name {pkg!r}: must be a lowercase Python identifier (e.g. 'zeta_bot')")
    if not EMAIL.match(a["author_email"]):
        found.append(f"author_email {a['author_email']!r}: not an email address")
    if not OWNER.match(a["github_owner"]):
        found.append(f"github_owner {a['github_owner']!r}: not a GitHub user or organisation name")
    if not REPO.match(a["workflows_repo"]):
        found.append(f"workflows_repo {a['workflows_repo']!r}: expected OWNER/REPO")
    if not REF.match(a["workflows_ref"]):
        found.append(f"workflows_ref {a['workflows_ref']!r}: expected a tag, branch or commit")
    if not REGISTRY.match(a["container_registry"]):
        found.append(f"container_registry {a['container_registry']!r}: expected host[:port]/namespace, lowercase")
    if not REVISION.match(a["base_model_revision"]):
        found.append(f"base_model_revision {a['base_model_revision']!r}: expected a commit hash (or empty)")
    hub_model = "/" in a["base_model"] and not a["base_model"].startswith(("/", "."))
    if hub_model and not a["base_model_revision"]:
        found.append(f"base_model_revision: pin {a['base_model']!r} to a commit hash (reproducible releases)")
    return found


def main() -> int:
    found = problems(ANSWERS)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
