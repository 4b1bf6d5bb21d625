"""How the kit installs: one lock for every platform, ranges in pyproject.toml,
environment.yml equal to it, one version, the minimum-dependencies constraints.

The lock is resolved for each platform with uv (``--python-platform``: nothing is
downloaded but the packages' metadata, nothing installed). uv comes from PyPI into the
checkout's ``.uv/`` (as ``make lock`` puts it); where neither uv nor PyPI is reachable those
tests skip, saying so.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import selfprompt
from selfprompt.utils.lock import LockError, marker_environment, read_lock

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements-lock.txt"
sys.path.insert(0, str(REPO / "tests"))
import min_dependencies  # noqa: E402

#: the platforms a student's laptop or a lab machine has: uv's name, the wheel tag pip uses
PLATFORMS = {"linux-x86_64": ("x86_64-manylinux_2_28", "manylinux_2_28_x86_64"),
             "linux-aarch64": ("aarch64-manylinux_2_28", "manylinux_2_28_aarch64"),
             "macos-arm64": ("aarch64-apple-darwin", "macosx_14_0_arm64"),
             "windows-amd64": ("x86_64-pc-windows-msvc", "win_amd64")}
#: the Python versions the kit supports (pyproject.toml's classifiers say the same)
PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def _pyproject() -> dict:
    return min_dependencies._load((REPO / "pyproject.toml").read_text())


def _uv_version() -> str:
    return re.search(r"^UV_VERSION\s*\?=\s*(\S+)", (REPO / "Makefile").read_text(),
                     re.M).group(1)


@pytest.fixture(scope="module")
def uv() -> str:
    """uv on PATH, or the checkout's .uv/bin/uv (installed from PyPI when missing)."""
    found = shutil.which("uv")
    if found:
        return found
    home = REPO / ".uv"
    exe = home / ("Scripts/uv.exe" if os.name == "nt" else "bin/uv")
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q",
                               f"uv=={_uv_version()}"], capture_output=True, text=True)
        if proc.returncode:
            why = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            pytest.skip(f"uv could not be installed from PyPI (no package index here?): {why}")
    return str(exe)


def _names(pins) -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in pins}


def _resolve(uv: str, platform: str, python: str, out: Path) -> subprocess.CompletedProcess:
    """uv resolves the lock for one platform, wheels only (only metadata is fetched).
    ``--python``: this interpreter answers for the target, so that uv fetches no Python of
    the target's version (that download, not the resolution, would take the time)."""
    return subprocess.run(
        [uv, "pip", "compile", str(LOCK), "--python", sys.executable, "--python-platform",
         PLATFORMS[platform][0], "--python-version", python, "--only-binary", ":all:",
         "--no-header", "--no-annotate", "-q", "-o", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0", "UV_NO_PROGRESS": "1",
             "UV_PYTHON_DOWNLOADS": "never"})


@pytest.fixture(scope="module")
def resolved(uv, tmp_path_factory) -> dict:
    """Every (platform, Python) resolved at once: uv waits on the network, not the CPU."""
    from concurrent.futures import ThreadPoolExecutor

    folder = tmp_path_factory.mktemp("resolved")
    jobs = {(p, v): folder / f"{p}-{v}.txt" for p in PLATFORMS for v in PYTHONS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(_resolve, uv, *key, out) for key, out in jobs.items()}
    return {key: (future.result(), jobs[key]) for key, future in futures.items()}


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_lock_resolves_for_every_platform_with_wheels_only(resolved, platform, python):
    """Every pin that applies there has a wheel for the platform, and together they are a
    complete, consistent environment: uv resolves exactly the lock's pins, no more."""
    proc, out = resolved[platform, python]
    error = proc.stderr.strip()
    if proc.returncode and re.search(r"(?i)failed to fetch|dns|connect|network|timed out",
                                     error):
        pytest.skip(f"PyPI not reachable: {error.splitlines()[0]}")
    assert proc.returncode == 0, f"the lock does not install on {platform}, Python " \
        f"{python}:\n{error}\nRun `make lock` (and check pyproject.toml's ranges)."
    assert _names(read_lock(out)) == _names(read_lock(LOCK, PLATFORMS[platform][1], python))


def test_the_lock_pins_what_pyproject_allows_and_the_package_declares_only_ranges():
    project = _pyproject()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]
            + [r for extra in ("notebooks", "test")
               for r in project["optional-dependencies"][extra]]]
    for python in PYTHONS:
        for platform, (_, tag) in PLATFORMS.items():
            pins = _names(read_lock(LOCK, tag, python))
            for req in reqs:
                name = canonicalize_name(req.name)
                assert name in pins, f"{req.name} is not locked for {platform}, {python}"
                assert req.specifier.contains(pins[name], prereleases=True), \
                    f"{name}=={pins[name]} is outside pyproject.toml's {req}"
    exact = [str(r) for r in reqs if any(s.operator in ("==", "===") for s in r.specifier)]
    assert exact == [], "exact pins belong in requirements-lock.txt, ranges in pyproject.toml"
    for req in reqs:  # a lower bound is what `make test-min` tests
        assert any(s.operator == ">=" for s in req.specifier), f"{req}: no lower bound"


def test_torch_and_the_nvidia_wheels_are_locked_for_linux_only():
    """The CUDA build of torch needs the nvidia-* wheels on Linux; the other platforms'
    torch wheels have none, and pip must not be asked for them there."""
    linux = _names(read_lock(LOCK, "manylinux_2_28_x86_64", "3.11"))
    mac = _names(read_lock(LOCK, "macosx_14_0_arm64", "3.11"))
    windows = _names(read_lock(LOCK, "win_amd64", "3.11"))
    assert linux["torch"] == mac["torch"] == windows["torch"]
    cuda = {n for n in linux if n.startswith(("nvidia-", "cuda-")) or n == "triton"}
    assert "nvidia-cublas" in cuda
    assert not cuda & set(mac) and not cuda & set(windows)


def test_markers_are_evaluated_for_the_target_and_a_bad_line_names_itself(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# comment\nsix==1.17.0\n"
                    "numpy==2.2.6 ; python_full_version < '3.11'\n"
                    "numpy==2.4.6 ; python_full_version >= '3.11'\n"
                    "pywinpty==3.1.2 ; os_name == 'nt'\n"
                    "appnope==1.0.0 ; sys_platform == 'darwin'\n")
    assert read_lock(lock, "win_amd64", "3.10") == [
        ("six", "1.17.0"), ("numpy", "2.2.6"), ("pywinpty", "3.1.2")]
    assert read_lock(lock, "macosx_14_0_arm64", "3.12") == [
        ("six", "1.17.0"), ("numpy", "2.4.6"), ("appnope", "1.0.0")]
    assert marker_environment("manylinux_2_28_aarch64")["platform_machine"] == "aarch64"
    lock.write_text("six==1.17.0\nnumpy>=2\n")
    with pytest.raises(LockError, match=r"lock.txt:2: .*'numpy>=2'"):
        read_lock(lock)


def _environment_yml() -> tuple[str, list[str]]:
    import yaml

    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(d for d in conda if d.startswith("python"))
    return python, pip


def test_environment_yml_lists_what_pyproject_toml_declares():
    """conda users get the same ranges and extras as pip users: the pip section is
    pyproject.toml's dependencies, then its notebooks and test extras, then the kit."""
    project = _pyproject()["project"]
    python, pip = _environment_yml()
    want = (project["dependencies"] + project["optional-dependencies"]["notebooks"]
            + project["optional-dependencies"]["test"])
    assert [str(Requirement(r)) for r in pip[:-1]] == [str(Requirement(r)) for r in want]
    assert pip[-1] == "-e ."
    low = re.search(r">=\s*([0-9.]+)", project["requires-python"]).group(1)
    assert python.split("=", 1)[1] in PYTHONS and python.split("=", 1)[1] >= low


def test_one_version_for_the_package_the_command_line_and_the_metadata():
    assert _pyproject()["project"]["dynamic"] == ["version"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "selfprompt.__version__"}
    proc = subprocess.run([sys.executable, "-m", "selfprompt", "--version"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"selfprompt-kit {selfprompt.__version__}"
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## {selfprompt.__version__}" in changelog
    citation = (REPO / "CITATION.cff").read_text()
    assert re.search(rf"^version: \"?{re.escape(selfprompt.__version__)}\"?$", citation, re.M)


def test_the_minimum_dependencies_are_the_lower_bounds():
    lines = subprocess.run([sys.executable, str(REPO / "tests" / "min_dependencies.py")],
                           capture_output=True, text=True, check=True).stdout.split()
    constraints = dict(re.split(r"===?", line, maxsplit=1) for line in lines)
    assert "torch===2.13.0" in lines and "torchvision===0.28.0" in lines  # no +cpu variant
    assert "numpy==1.26" in lines
    assert set(map(canonicalize_name, constraints)) == {
        canonicalize_name(Requirement(r).name) for r in min_dependencies.requirements()}
    with pytest.raises(ValueError, match="cannot read"):
        min_dependencies.lower_bounds(["!!"])


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_lab_opens_start_here_and_test_min_installs_the_lower_bounds(tmp_path):
    def dry(target: str) -> str:
        return subprocess.run(["make", "-n", "-s", target, "VENV=" + str(tmp_path / "v")],
                              capture_output=True, text=True, cwd=REPO, check=True,
                              env={**os.environ, "MAKEFLAGS": ""}).stdout

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / ".installed").touch()  # make -n: no environment is built
    assert "-m selfprompt lab" in dry("lab")
    steps = dry("test-min")
    assert "tests/min_dependencies.py > .venv-min/constraints.txt" in steps
    assert '-c .venv-min/constraints.txt -e ".[notebooks,test]"' in steps
    assert 'pytest tests -m "not slow"' in steps
    lock = dry("lock")
    assert "pip compile pyproject.toml --extra notebooks --extra test --universal" in lock
