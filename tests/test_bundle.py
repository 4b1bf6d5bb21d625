"""The offline classroom bundle (selfprompt.teaching.bundle): its manifest and checksums, the kit
installed from it with the package index switched off, its cache used without encoding,
its data subset being what the notebooks read, and a rerun that resumes.

The bundles here are small: a synthetic set, the tiny backbone, no locked pins (or one,
where a package index answers): torch is never downloaded by the tests.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfprompt.teaching import bundle, classroom
from selfprompt.teaching.bundle import BundleError
from selfprompt.teaching.notebook import REPO

KVASIR = REPO.parent / "shared" / "data" / "kvasir-seg"
N = 5  # images in the small bundles


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _build(out, data, cache, requirements=None, bootstrap=(), limit=N):
    if requirements is None:
        requirements = Path(out).parent / "no-pins.txt"
        requirements.write_text("# no pins: the tests never download torch\n")
    return bundle.build(out, data, backbone="tiny", cache=cache, limit=limit,
                        requirements=requirements, bootstrap=bootstrap)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A bundle of 5 synthetic pairs and their tiny embeddings, no pins."""
    from selfprompt.datasets.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("bundle")
    data = make_synthetic(root / "synthetic", n=8, seed=3)
    manifest = _build(root / "bundle", data, root / "cache")
    return root / "bundle", manifest, data, root / "cache"


def _copy(small, tmp_path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(small[0], out)  # copy2: sizes, contents and mtimes kept
    return out


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_manifest_lists_every_file_with_its_size_and_sha256(small):
    out, manifest, data, _ = small
    assert _files(out) - {"manifest.json"} == set(manifest["files"])
    for rel, entry in manifest["files"].items():
        assert entry == {"size": (out / rel).stat().st_size, "sha256": _sha(out / rel)}, rel
    assert manifest["total_bytes"] == sum(e["size"] for e in manifest["files"].values())
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert manifest["commit"] == head and manifest["complete"] is True
    assert manifest["python"] == "%d.%d" % sys.version_info[:2]
    assert manifest["data"]["images"] == [f"synthetic_{i:03d}" for i in range(N)]
    assert manifest["kit_wheel"].startswith("wheels/selfprompt_kit-")
    assert manifest["source"] in manifest["files"] and "README.txt" in manifest["files"]
    # one embedding a bundled image, named by the image's sha256 (the cache's key)
    keys = {_sha(out / f"data/kvasir-seg/images/synthetic_{i:03d}.jpg") for i in range(N)}
    npys = {Path(r).stem for r in manifest["files"] if r.endswith(".npy")}
    assert npys == keys
    assert bundle.verify(out) == ([], [])


def test_verify_names_each_damaged_file_and_runs_on_the_standard_library_alone(small, tmp_path):
    def verify(folder):  # -S: no site-packages (no NumPy, tqdm, torch), as before an install
        return subprocess.run([sys.executable, "-S", "-m", "selfprompt", "bundle", "verify",
                               str(folder)], cwd=REPO, capture_output=True, text=True,
                              timeout=120)

    good = verify(small[0])
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: ")
    out = _copy(small, tmp_path)
    npy = next(out.glob("embeddings/*/*/*.npy"))
    raw = bytearray(npy.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one flipped bit: same size
    npy.write_bytes(bytes(raw))
    wheel = out / small[1]["kit_wheel"]
    wheel.write_bytes(wheel.read_bytes()[:1000])  # a copy cut short
    (out / "data/kvasir-seg/masks/synthetic_001.jpg").unlink()
    (out / "notes.txt").write_text("an instructor's note")
    bad = verify(out)
    assert bad.returncode == 1
    rel = npy.relative_to(out).as_posix()
    assert f"corrupted: {rel}" in bad.stderr
    assert f"truncated: {small[1]['kit_wheel']} (1000 of " in bad.stderr
    assert "missing: data/kvasir-seg/masks/synthetic_001.jpg" in bad.stderr
    assert "3 problem(s)" in bad.stderr
    assert "extra: notes.txt" in bad.stdout
    # install refuses a damaged bundle before touching anything
    with pytest.raises(BundleError, match="damaged, nothing was installed"):
        bundle.install(out, venv=tmp_path / "venv", data_dir=tmp_path / "d", check=False)
    assert not (tmp_path / "venv").exists() and not (tmp_path / "d").exists()


def _fresh_venv(path: Path) -> Path:
    """A virtual environment seeing the base interpreter's packages (its pip, fast)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(path)], check=True, timeout=120)
    python = bundle.venv_python(path)
    if subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode:
        shutil.rmtree(path)
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)],
                       check=True, timeout=300)
    return python


def _where(python: Path, cwd: Path, module: str = "selfprompt") -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(python), "-c", f"import {module}; print({module}.__file__)"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_kits_wheel_installs_from_the_bundle_with_the_index_off(small, tmp_path,
                                                                    monkeypatch):
    python = _fresh_venv(tmp_path / "venv")
    # any index or find-links of the environment is switched off for the install
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    bundle.install_packages(small[0], python, kit=None, upgrade_pip=False)
    where = Path(_where(python, tmp_path))
    assert (tmp_path / "venv") in where.parents, where  # from the bundle, not this clone
    assert where.name == "__init__.py"
    for module in ("teaching/bundle.py", "models/registry.py", "assets/registry.txt",
                   "assets/manifests/kvasir-seg.sha256"):  # every subpackage and its data
        assert (where.parent / module).is_file(), module


def test_the_bundled_cache_serves_the_bundled_images_without_encoding(small, tmp_path,
                                                                      monkeypatch):
    from selfprompt.teaching import notebook as nb
    from selfprompt.embeddings import EmbeddingCache
    from selfprompt.models.encoder import ImageEncoder

    out, manifest = small[0], small[1]
    data_dir, cache = tmp_path / "data" / "kvasir-seg", tmp_path / "embeddings"
    placed = bundle.place_files(out, data_dir, cache)
    assert placed["copied"] == sum(1 for r in manifest["files"]
                                   if r.startswith(("data/", "embeddings/")))

    def no_encoding(*args, **kwargs):
        raise AssertionError("the encoder ran: the bundled cache was not used")

    monkeypatch.setattr(ImageEncoder, "encode", no_encoding)
    monkeypatch.setenv("SELFPROMPT_CACHE", str(cache))
    s = nb.setup(data_dir, backbone="tiny", limit=N)
    assert (s.stats.total, s.stats.encoded, s.stats.reused) == (N, 0, N)
    assert s.embeddings.cache.dir == cache / Path(manifest["embeddings"]["folder"]).name
    source = EmbeddingCache.for_backbone(small[3], s.backbone)
    for key in s.embeddings.keys:
        assert _sha(s.embeddings.cache.path(key)) == _sha(source.path(key))
    # a second placement finds everything there
    assert bundle.place_files(out, data_dir, cache)["copied"] == 0


def test_install_never_replaces_a_different_file_of_the_users(small, tmp_path):
    data_dir, cache = tmp_path / "data", tmp_path / "embeddings"
    mine = data_dir / "images" / "synthetic_000.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own image")
    with pytest.raises(BundleError, match="differ from the bundle's") as err:
        bundle.place_files(small[0], data_dir, cache)
    assert str(mine) in str(err.value) and "nothing was copied" in str(err.value)
    assert mine.read_bytes() == b"my own image"
    assert not (data_dir / "masks").exists() and not cache.exists()


def test_a_bundle_for_another_python_is_refused_with_what_to_do():
    manifest = {"python": "3.99", "platform": "linux-x86_64", "platform_given": True}
    with pytest.raises(BundleError, match=r"Python 3\.99.*BUNDLE_PYTHON"):
        bundle.check_compatible(manifest)
    here = "%d.%d" % sys.version_info[:2]
    with pytest.raises(BundleError, match="BUNDLE_PLATFORM"):
        bundle.check_compatible({"python": here, "platform": "os-9-m68k",
                                 "platform_given": False})


def test_a_rerun_keeps_good_files_and_redoes_damaged_and_missing_ones(small, tmp_path, capsys):
    out = _copy(small, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    npy = next(out.glob("embeddings/*/*/*.npy"))
    npy.write_bytes(npy.read_bytes()[:100])  # what a pulled-out stick leaves
    image = out / "data/kvasir-seg/images/synthetic_002.jpg"
    image.unlink()
    (out / ".partial-wheels").mkdir()  # an interrupted download
    (out / ".partial-wheels" / "half.whl").write_bytes(b"PK")
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    problems, _ = bundle.verify(out)
    assert any("did not finish" in p for p in problems)
    before = {rel: (out / rel).stat() for rel in manifest["files"] if (out / rel).is_file()}
    capsys.readouterr()
    again = _build(out, small[2], small[3])
    assert bundle.verify(out) == ([], [])
    assert again["files"] == small[1]["files"]
    redone = {npy.relative_to(out).as_posix(), image.relative_to(out).as_posix()}
    for rel, st in before.items():
        now = (out / rel).stat()
        if rel not in redone:  # kept as it was: not rewritten
            assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), rel
    assert f"({len(redone)} written, {len(manifest['files']) - len(redone)} already there" \
        in capsys.readouterr().out


def test_the_subset_is_what_the_notebooks_read():
    """Every tutorial notebook reads the first `limit` images; the bundle takes the most."""
    from selfprompt.teaching.classroom import NOTEBOOKS

    limits = []
    for name in NOTEBOOKS:
        nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
        params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        assert len(params) == 1, name
        line = [x for x in "".join(params[0]["source"]).splitlines() if x.startswith("limit")]
        limits.append(int(line[0].split("=")[1].split("#")[0]))
    assert classroom.notebook_limit() == max(limits) == 60


@pytest.mark.skipif(not KVASIR.is_dir(), reason="needs Kvasir-SEG at ../shared/data/kvasir-seg")
def test_real_kvasir_subset_is_copied_as_published_and_read_by_the_notebooks(
        tmp_path, monkeypatch):
    from selfprompt.teaching import notebook as nb

    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))  # the checks' records

    limit = classroom.notebook_limit()
    manifest = _build(tmp_path / "bundle", KVASIR, tmp_path / "cache", limit=None)
    names = sorted(p.stem for p in (KVASIR / "images").glob("*.jpg"))[:limit]
    assert manifest["data"]["images"] == names and manifest["data"]["limit"] == limit
    folder = tmp_path / "bundle" / "data" / "kvasir-seg"
    for name in names:
        for sub in ("images", "masks"):
            assert _sha(folder / sub / f"{name}.jpg") == _sha(KVASIR / sub / f"{name}.jpg")
    assert _sha(folder / "kavsir_bboxes.json") == _sha(KVASIR / "kavsir_bboxes.json")
    assert _files(folder) == ({f"{s}/{n}.jpg" for s in ("images", "masks") for n in names}
                              | {"kavsir_bboxes.json"})
    data, _ = nb.open_data(folder, limit=limit)  # what the notebooks open, from the bundle
    original, _ = nb.open_data(KVASIR, limit=limit)
    assert data.names == original.names == names


def test_pins_are_hash_checked_and_the_kit_installs_editable_with_the_index_off(tmp_path):
    """The Makefile's route: the locked pins by hash, then the kit editable from its
    source tree, its build backend (setuptools) taken from the bundle's wheels."""
    pin = next(line for line in (REPO / "requirements-lock.txt").read_text().splitlines()
               if line.startswith("six=="))
    requirements = tmp_path / "pins.txt"
    requirements.write_text(pin + "\n")
    from selfprompt.datasets.synthetic import make_synthetic

    data = make_synthetic(tmp_path / "synthetic", n=3, seed=1)
    try:
        manifest = _build(tmp_path / "bundle", data, tmp_path / "cache", requirements,
                          bootstrap=("setuptools",), limit=2)
    except BundleError as err:
        if "could not download" in str(err):
            pytest.skip(f"no package index answers here: {err}")
        raise
    out = tmp_path / "bundle"
    wheel = next(r for r in manifest["files"] if r.startswith("wheels/six-"))
    listed = (out / "requirements.txt").read_text().splitlines()
    assert f"{pin} --hash=sha256:{manifest['files'][wheel]['sha256']}" in listed
    assert any(x.startswith("setuptools==") and "--hash=sha256:" in x for x in listed)
    assert any(r.startswith("wheels/setuptools-") for r in manifest["files"])
    source = tmp_path / "src"
    source.mkdir()
    subprocess.run(["tar", "xzf", str(out / manifest["source"]), "-C", str(source)], check=True)
    kit = source / bundle.KIT
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = bundle.venv_python(venv)
    bundle.install_packages(out, python, kit=kit, upgrade_pip=False)
    assert Path(_where(python, tmp_path)).parent == kit / "selfprompt"  # editable, that tree
    assert (venv / "lib").is_dir() and _where(python, tmp_path, "six")
    # a wheel whose hash is not the listed one is refused by pip itself
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "six"], check=True)
    (out / wheel).write_bytes((out / wheel).read_bytes() + b"\0")
    with pytest.raises(BundleError, match="(?i)hash"):
        bundle.install_packages(out, python, kit=None, upgrade_pip=False)
