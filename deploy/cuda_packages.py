"""Print the locked packages that only torch's CUDA build needs, one per line (stdlib only: runs in the image build).

PyPI's Linux torch is the CUDA build and pulls several GB of NVIDIA libraries. A CPU image installs every
locked package except torch and the packages nothing but torch needs, then torch from a CPU index. The set
is computed from uv.lock, so it follows torch upgrades without anyone keeping a list.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def cuda_only(lock: dict, root: str = "torch") -> list[str]:
    """`root` and its Linux-only dependencies (the CUDA build's), less anything else in the lock still needs.

    torch's other dependencies (sympy, jinja2, ...) are the CPU build's too, so they stay installed from the lock.
    """
    packages = {p["name"]: p for p in lock["package"]}

    def closure(starts: list[str], skip: str = "") -> set[str]:
        seen: set[str] = set()
        todo = list(starts)
        while todo:
            name = todo.pop()
            if name in seen or name == skip or name not in packages:
                continue
            seen.add(name)
            for dep in packages[name].get("dependencies", []):
                todo.append(dep["name"])
                for extra in dep.get("extra", []):  # cuda-toolkit[cublas]: the extra's own dependencies
                    todo.extend(
                        d["name"] for d in packages[dep["name"]].get("optional-dependencies", {}).get(extra, [])
                    )
        return seen

    edges = packages[root].get("dependencies", [])
    cpu_build = closure([d["name"] for d in edges if "linux" not in d.get("marker", "")])
    candidates = closure([root]) - cpu_build
    others = [p for name, p in packages.items() if name not in candidates]
    still_needed = closure([d["name"] for p in others for d in p.get("dependencies", [])], skip=root)
    return sorted(candidates - still_needed)


def main(argv: list[str]) -> int:
    lock = tomllib.loads(Path(argv[1] if len(argv) > 1 else "uv.lock").read_text(encoding="utf-8"))
    print("\n".join(cuda_only(lock)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
