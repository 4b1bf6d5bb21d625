"""The lock file (``requirements-lock.txt``): one file for every platform.

Each line is ``name==version``, optionally followed by ``; <environment marker>`` (PEP 508)
that says where the pin applies: ``nvidia-cublas==13.1.1.3 ; sys_platform == 'linux'``, or
one version of NumPy for Python 3.10 and another for the rest. pip reads the markers
itself; this module answers the same question for a platform other than the running one
(the offline bundle built for the lab machines, the test that every platform resolves).
"""
from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

#: ``name==version`` and an optional marker after ``;``
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s;]+)\s*(?:;\s*(.+))?")


class LockError(ValueError):
    """A line of the lock file is not a pin."""


def marker_environment(platform_tag: str | None = None,
                       python_version: str | None = None) -> dict[str, str]:
    """The values markers are evaluated against, for a wheel platform tag
    (``manylinux_2_28_x86_64``, ``macosx_14_0_arm64``, ``win_amd64``; None: this machine)
    and a Python ``X.Y`` (None: the running one)."""
    env = {"implementation_name": "cpython", "platform_python_implementation": "CPython",
           "python_version": ".".join(platform.python_version_tuple()[:2]),
           "python_full_version": platform.python_version(),
           "sys_platform": sys.platform, "platform_machine": platform.machine(),
           "platform_system": platform.system(), "os_name": "nt" if sys.platform == "win32"
           else "posix", "platform_release": "", "platform_version": "",
           "implementation_version": platform.python_version(), "extra": ""}
    if python_version:
        full = python_version if python_version.count(".") >= 2 else f"{python_version}.0"
        env.update(python_version=".".join(full.split(".")[:2]), python_full_version=full,
                   implementation_version=full)
    if platform_tag:
        tag = platform_tag.lower()
        if tag.startswith("win"):
            machine = {"win_amd64": "AMD64", "win_arm64": "ARM64", "win32": "x86"}.get(tag, "AMD64")
            env.update(sys_platform="win32", platform_system="Windows", os_name="nt",
                       platform_machine=machine)
        elif tag.startswith("macosx"):
            machine = "arm64" if tag.endswith("arm64") else "x86_64"
            env.update(sys_platform="darwin", platform_system="Darwin", os_name="posix",
                       platform_machine=machine)
        elif "linux" in tag:
            machine = next((m for m in ("x86_64", "aarch64", "ppc64le", "s390x", "i686")
                            if tag.endswith(m)), "x86_64")
            env.update(sys_platform="linux", platform_system="Linux", os_name="posix",
                       platform_machine=machine)
        else:
            raise LockError(f"unknown platform tag {platform_tag!r}: give a wheel tag such as "
                            "manylinux_2_28_x86_64, macosx_14_0_arm64 or win_amd64")
    return env


def read_lock(path: Path, platform_tag: str | None = None,
              python_version: str | None = None) -> list[tuple[str, str]]:
    """``(name, version)`` of every pin that applies to the platform and Python given
    (default: this machine), in the file's order. Comments and blank lines are skipped;
    any other line that is not a pin raises :class:`LockError` naming it."""
    env = None
    pins = []
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN.fullmatch(line)
        if not m:
            raise LockError(f"{path}:{number}: expected `name==version [; marker]` (a "
                            f"locked pin), found {raw.strip()!r}")
        if m.group(3):
            from packaging.markers import Marker  # pip's own marker rules

            env = env or marker_environment(platform_tag, python_version)
            if not Marker(m.group(3)).evaluate(env):
                continue
        pins.append((m.group(1), m.group(2)))
    return pins
