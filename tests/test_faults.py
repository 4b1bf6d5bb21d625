"""Faults a user meets: one clear line, an exit status, nothing lost, no traceback.

Each test runs the command line as a user does (a subprocess, or ``cli.main``) and fails
if a traceback reaches the user.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from selfprompt import cli
from selfprompt.datasets.synthetic import make_synthetic
from selfprompt.embeddings import CacheError, EmbeddingCache, EncodingError
from selfprompt.utils.io import FolderError

REPO = Path(__file__).resolve().parents[1]


def kit(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SELFPROMPT_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "selfprompt", "-q", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("data") / "kvasir-seg", 8, 0)


def test_ctrl_c_keeps_what_was_encoded_and_says_the_same_command_resumes(pairs, tmp_path):
    cache = tmp_path / "cache"
    args = ("embed", str(pairs), "--backbone", "medsam_lite", "--cache", str(cache))
    proc = kit(*args)
    deadline = time.monotonic() + 300
    while not list(cache.rglob("*.npy")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no embedding was written in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before the interruption arrived")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted." in err
    assert "the same command" in err and str(cache) in err
    kept = len(list(cache.rglob("*.npy")))
    assert kept >= 1
    again = kit(*args)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"{8 - kept} encoded, {kept} reused" in out


def test_an_unwritable_cache_or_run_folder_is_named_before_any_work(pairs, tmp_path, capsys):
    nowhere = "/proc/selfprompt-kit"  # no one may create files there, root included
    code = cli.main(["-q", "embed", str(pairs), "--backbone", "tiny", "--cache", nowhere])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"cannot write to the embedding cache {nowhere}" in err and "--cache" in err
    code = cli.main(["-q", "run", str(pairs), "--backbone", "tiny", "--cache",
                     str(tmp_path / "cache"), "--out", nowhere])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot write to the run folder {nowhere}" in err
    assert not (tmp_path / "cache").exists()  # said before anything was read or encoded
    with pytest.raises(FolderError):
        EmbeddingCache(nowhere, "tiny", "0" * 64)


def test_a_cache_too_small_for_the_data_set_is_named_with_the_numbers(tmp_path, monkeypatch):
    import shutil

    cache = EmbeddingCache(tmp_path, "tiny", "0" * 64)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=3 << 20))
    with pytest.raises(CacheError, match=r"needs 16\.0 MiB for 8 images, but its disk has "
                                         r"3\.0 MiB free"):
        cache.check_room(8)
    cache.check_room(1)  # one fits


@pytest.fixture
def small_volume(tmp_path):
    """A 3 MiB tmpfs (needs root and mount); skipped where there is none."""
    where = tmp_path / "small"
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield where
    subprocess.run(["umount", str(where)], capture_output=True)


def test_a_full_disk_stops_before_encoding_with_one_line(pairs, small_volume):
    proc = kit("embed", str(pairs), "--backbone", "tiny", "--cache", str(small_volume))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "Traceback" not in err
    assert "needs 16.0 MiB for 8 images" in err and str(small_volume) in err


def test_a_disk_that_fills_during_the_run_is_named_and_loses_nothing(small_volume):
    cache = EmbeddingCache(small_volume, "tiny", "0" * 64)
    features = np.zeros((256, 64, 64), np.float16)
    cache.save("a" * 64, features)  # 2 MiB of 3: the second cannot fit
    with pytest.raises(CacheError, match="the disk is full .* the same command resumes"):
        cache.save("b" * 64, features)
    assert cache.is_valid("a" * 64) and not cache.path("b" * 64).exists()
    assert not list(small_volume.rglob("*.tmp"))  # no half-written file left behind


def test_gpu_out_of_memory_names_the_batch_size_to_try(pairs, tmp_path):
    import torch

    from selfprompt.embeddings import DatasetEmbeddings
    from selfprompt.datasets import open_dataset
    from selfprompt.models import ImageEncoder, load_backbone

    backbone = load_backbone("tiny", tmp_path / "tiny.pth")
    encoder = ImageEncoder(backbone, batch_size=8)

    def out_of_memory(prepared):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    encoder.encode = out_of_memory
    cache = EmbeddingCache.for_backbone(tmp_path / "cache", backbone, encoder=encoder)
    embeddings = DatasetEmbeddings(open_dataset(pairs), cache)
    with pytest.raises(EncodingError, match="batch of 8 image.* --batch-size 4"):
        embeddings.ensure(encoder, workers=0, progress=False)


def test_an_unforeseen_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something the kit did not foresee")

    monkeypatch.setattr(cli.method, "cmd_summarise", broken)
    monkeypatch.delenv("SELFPROMPT_DEBUG", raising=False)
    code = cli.main(["summarise", "anywhere"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == ("error: RuntimeError: something the kit did not foresee (rerun with "
                   "--debug for the traceback)\n")
    monkeypatch.setenv("SELFPROMPT_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["summarise", "anywhere"])


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    """``locked`` is an advisory flock: the kernel drops it with the process that held it."""
    from selfprompt.utils.io import locked

    target = tmp_path / "folds.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); "
         "from selfprompt.utils.io import locked; cm = locked(sys.argv[2]); cm.__enter__(); "
         "print('held', flush=True); time.sleep(600)", str(REPO), str(target)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    assert (tmp_path / ".folds.json.lock").exists()  # the file stays; the lock does not
    start = time.monotonic()
    with locked(target):
        pass
    assert time.monotonic() - start < 5
