"""The oldest versions pyproject.toml allows, as pip constraints (``name==lower bound``).

``make test-min`` installs the kit under these constraints and runs the fast tests: each
lower bound in pyproject.toml is then a version the tests pass with, not a guess (the
idea of scikit-learn's minimum-dependencies job). A dependency without a lower bound is
left free. Standard library only: it runs before anything is installed.

    python tests/min_dependencies.py > constraints.txt
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: ``name[extra]>=1.2,<3`` -> name, ">=1.2,<3"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")
#: built in variants with a local version (2.13.0+cpu, +cu126) on other indexes and in
#: find-links folders: ``===`` takes the release itself, so that torch and torchvision
#: (whose compiled operators must match torch's build) come from the same one
EXACT_BUILD = ("torch", "torchvision")


def _load(text: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pip vendors a TOML reader
        from pip._vendor import tomli as tomllib
    return tomllib.loads(text)


def requirements(pyproject: Path = REPO / "pyproject.toml",
                 extras: tuple[str, ...] = ("notebooks", "test")) -> list[str]:
    """The dependencies and the extras' requirement strings, in the file's order."""
    project = _load(pyproject.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return reqs


def lower_bounds(reqs: list[str]) -> dict[str, str]:
    """``name -> version`` of each requirement's ``>=`` (or ``==``/``~=``) bound."""
    bounds = {}
    for req in reqs:
        m = REQUIREMENT.match(req)
        if not m:
            raise ValueError(f"pyproject.toml: cannot read the requirement {req!r}")
        name, spec = m.group(1), m.group(2)
        low = re.search(r"(?:>=|==|~=)\s*([0-9][^,\s]*)", spec)
        if low:
            bounds[name] = low.group(1)
    return bounds


def main() -> int:
    for name, version in lower_bounds(requirements()).items():
        print(f"{name}{'===' if name in EXACT_BUILD else '=='}{version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
