"""Validate the answers before anything is written; one clear message per bad answer, then exit 1."""

from __future__ import annotations

import json
import keyword
import re
import sys

#: every answer, as JSON: cookiecutter renders this file, and JSON carries any text (quotes, backslashes) as
#: data; a raw triple-quoted string holds it whole, since JSON escapes every double quote
ANSWERS_JSON = r"""{{ cookiecutter | jsonify }}"""

#: import names of the locked dependencies: pre_prompt fills this in from uv.lock in cookiecutter's copy
LOCKED_NAMES: frozenset[str] = frozenset()
#: the longest derived name, a Docker secret `<slug>-staging-api-keys`, may have 64 characters
LONGEST_SUFFIX, NAME_LIMIT = "-staging-api-keys", 64
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
    slug = a["project_slug"]
    if not SLUG.match(slug):
        found.append(f"project_slug {slug!r}: use lowercase letters, digits and single '-'")
    elif len(slug) + len(LONGEST_SUFFIX) > NAME_LIMIT:
        most = NAME_LIMIT - len(LONGEST_SUFFIX)
        found.append(
            f"project_slug {slug!r}: {len(slug)} characters, at most {most} "
            f"(the Docker secret '{slug}{LONGEST_SUFFIX}' may have {NAME_LIMIT})"
        )
    found += package_problems(a["package_name"])
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


def package_problems(pkg: str) -> list[str]:
    """An import name that works: ASCII, lowercase, not a keyword, shadowing neither the stdlib nor a dependency."""
    if not pkg.isascii() or not pkg.isidentifier() or keyword.iskeyword(pkg) or pkg != pkg.lower():
        return [f"package_name {pkg!r}: must be a lowercase ASCII Python identifier (e.g. 'zeta_bot')"]
    if pkg == "tests":
        return [f"package_name {pkg!r}: clashes with the project's tests/ directory; pick another (e.g. 'zeta_bot')"]
    if pkg in sys.stdlib_module_names or pkg == "test":  # the stdlib's `test` package is left out of that list
        return [f"package_name {pkg!r}: shadows the standard library module {pkg!r}; pick another (e.g. '{pkg}_bot')"]
    if pkg in LOCKED_NAMES:
        return [f"package_name {pkg!r}: shadows the dependency {pkg!r} in uv.lock; pick another (e.g. '{pkg}_bot')"]
    return []


def main() -> int:
    found = problems(json.loads(ANSWERS_JSON))
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
