"""The kit as an installed package: a non-editable ``pip install`` into a fresh virtual
environment, then commands and a notebook run from a folder outside any checkout.

Everything the kit writes (the embedding cache, the tiny backbone's generated weights,
results, the notebooks a student opens) must land in its home (``$SELFPROMPT_HOME``),
never in site-packages nor in the folder the commands run from. To stay fast the new
environment reuses this one's installed dependencies (a ``.pth`` line, as
``--system-site-packages`` would for a system Python) and installs only the kit itself,
with ``--no-deps`` and no build isolation (no download).
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: what a source distribution of the kit holds (all pip needs to build it)
SOURCE = ("pyproject.toml", "README.md", "LICENSE", "selfprompt", "notebooks")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, site-packages, env) of a fresh venv holding a non-editable install."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # a copy: an in-tree build would leave build/ in the checkout
    source.mkdir()
    for name in SOURCE:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info", ".ipynb_checkpoints"))
        else:
            shutil.copy2(src, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    # this environment's packages after the new one's own (which come first on sys.path)
    here = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
            if Path(p).is_dir()]
    (purelib / "zz_reuse_dependencies.pth").write_text("\n".join(dict.fromkeys(here)) + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "SELFPROMPT_CACHE", "SELFPROMPT_DATA_DIR",
                        "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(SELFPROMPT_HOME=str(root / "home"), OMP_NUM_THREADS="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "--no-index", str(source)],
                          capture_output=True, text=True, env=env, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return python, purelib, env, root


def _run(installed, *args, cwd):
    python, _, env, _ = installed
    proc = subprocess.run([str(python), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_an_installed_kit_runs_its_commands_and_a_notebook_outside_any_checkout(installed):
    python, purelib, env, root = installed
    home, anywhere = root / "home", root / "anywhere"
    anywhere.mkdir()
    before = _files(purelib)

    where = _run(installed, "-c", "import selfprompt; print(selfprompt.__file__)", cwd=anywhere)
    assert Path(where.strip()).is_relative_to(purelib)  # the installed copy, not the checkout
    assert (purelib / "selfprompt" / "notebooks" / "START_HERE.md").is_file()
    version = _run(installed, "-m", "selfprompt", "--version", cwd=anywhere)
    import selfprompt

    assert version.strip() == f"selfprompt-kit {selfprompt.__version__}"
    provenance = _run(installed, "-m", "selfprompt", "provenance", cwd=anywhere)
    assert f'"installed selfprompt-kit {selfprompt.__version__}"' in provenance

    data = root / "synthetic"
    _run(installed, "-m", "selfprompt", "synthetic", str(data), "--n", "12", cwd=anywhere)
    _run(installed, "-m", "selfprompt", "-q", "embed", str(data), "--backbone", "tiny",
         cwd=anywhere)
    out = _run(installed, "-m", "selfprompt", "-q", "run", str(data), "--backbone", "tiny",
               "--k", "2", "--folds", "0", "--presets", "corrected", cwd=anywhere)
    assert "results:" in out
    assert any((home / "data" / "embeddings").rglob("*.npy")) or any(
        (home / "data" / "embeddings").rglob("*")), "the embedding cache is not in the home"
    assert (home / "checkpoints").is_dir()  # the tiny backbone's generated weights
    runs = home / "reports" / "runs" / "synthetic" / "tiny"
    assert (runs / "corrected" / "k2" / "fold0.json").is_file(), sorted(_files(home))[:20]

    # one's own images: which to label, then masks for the rest, written where asked
    picked = root / "to_label.txt"
    _run(installed, "-m", "selfprompt", "-q", "suggest", "--images", str(data / "images"),
         "--k", "3", "--backbone", "tiny", "--out", str(picked), cwd=anywhere)
    assert len(picked.read_text().split()) == 3
    masks = root / "predicted"
    _run(installed, "-m", "selfprompt", "-q", "predict", "--labelled", str(data),
         "--images", str(data / "images"), "--backbone", "tiny", "--prompt", "box",
         "--out", str(masks), cwd=anywhere)
    assert len(list((masks / "masks").glob("*.png"))) == 12

    # the notebooks, copied to the home, run there as a student opens them
    _run(installed, "-m", "selfprompt", "notebooks", cwd=anywhere)
    notebooks = home / "notebooks"
    assert (notebooks / "START_HERE.md").is_file() and (notebooks / "exercises").is_dir()
    executed = root / "01_data.out.ipynb"
    _run(installed, "-m", "papermill", "--no-progress-bar", "--log-level", "WARNING",
         "--cwd", str(notebooks), str(notebooks / "01_data.ipynb"), str(executed),
         "-p", "limit", "12", "-k", "python3", cwd=anywhere)
    assert executed.is_file()

    assert _files(purelib) == before, "the kit wrote into site-packages"
    assert _files(anywhere) == set(), "the kit wrote into the folder it was run from"


def test_the_home_is_the_checkout_here_and_a_user_folder_when_installed(monkeypatch, tmp_path):
    """In a checkout nothing moves; the installed kit's home follows $SELFPROMPT_HOME,
    else the platform's data folder."""
    from selfprompt.utils import paths

    assert paths.checkout() == REPO and paths.KIT_ROOT == REPO
    assert paths.default_path("checkpoints") == Path("checkpoints")  # as the Makefile runs
    monkeypatch.setattr(paths, "_ABOVE", tmp_path / "site-packages")
    monkeypatch.setenv("SELFPROMPT_HOME", str(tmp_path / "home"))
    assert paths.checkout() is None
    assert paths.kit_home() == tmp_path / "home"
    monkeypatch.delenv("SELFPROMPT_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    expected = {"win32": tmp_path / "local", "darwin": Path.home() / "Library" /
                "Application Support"}.get(sys.platform, tmp_path / "xdg")
    assert paths.kit_home() == expected / "selfprompt-kit"


def test_the_notebooks_command_copies_without_overwriting_a_students_work(tmp_path):
    from selfprompt.cli.kit import notebooks_folder

    target = notebooks_folder(tmp_path / "nb", quiet=True)
    assert _files(target) >= {"START_HERE.md", "01_data.ipynb", "exercises/exercises.ipynb"}
    (target / "01_data.ipynb").write_text("my work")
    (target / "02_embedding.ipynb").unlink()
    notebooks_folder(tmp_path / "nb", quiet=True)
    assert (target / "01_data.ipynb").read_text() == "my work"
    assert (target / "02_embedding.ipynb").is_file()


def test_lab_opens_start_here_in_the_notebooks_folder(capsys):
    from selfprompt.cli import main

    assert main(["lab", "--print-command", "--", "--no-browser"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"cd {REPO / 'notebooks'} && ")
    assert line.endswith("-m jupyterlab START_HERE.md --no-browser")


def test_an_installed_kit_checks_its_environment_against_its_ranges(tmp_path):
    """No checkout, no lock: the classroom check compares with the declared ranges."""
    from selfprompt.teaching import classroom

    ok, detail = classroom.check_environment(tmp_path / "no-lock.txt")
    assert ok, detail
    assert "within its ranges" in detail
