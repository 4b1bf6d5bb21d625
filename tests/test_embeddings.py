"""Embeddings: the batched encoder equals SAM's own set_image, the cache never lies."""
import warnings

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from selfprompt.datasets.reader import open_dataset
from selfprompt.decode import PromptDecoder
from selfprompt.embeddings import DatasetEmbeddings, EmbeddingCache, CacheError, embed_dataset
from selfprompt.models.encoder import ImageEncoder


@pytest.fixture(scope="module")
def images(synthetic_dir):
    ds = open_dataset(synthetic_dir)
    return [ds.image(i) for i in range(3)]


def set_image_features(backbone, image):
    p = SamPredictor(backbone.sam)
    p.set_image(image)
    return p, p.get_image_embedding()[0]


def test_batch_1_fp32_exact_encoder_is_bit_for_bit_set_image(tiny_backbone, images):
    enc = ImageEncoder(tiny_backbone, fused=False)
    _, ref = set_image_features(tiny_backbone, images[0])
    assert torch.equal(torch.from_numpy(enc(images[0])), ref)


def test_batched_encoding_matches_one_at_a_time(tiny_backbone, images):
    enc = ImageEncoder(tiny_backbone, batch_size=3)
    batch = enc.encode([enc.prepare(im) for im in images])
    for im, got in zip(images, batch):
        _, ref = set_image_features(tiny_backbone, im)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    assert enc.passes == 3


def test_decoding_a_cached_embedding_equals_sam_predictor(tiny_backbone, images, tmp_path):
    cache = EmbeddingCache.for_backbone(tmp_path, tiny_backbone, dtype="float32")
    image = images[1]
    cache.save("k", ImageEncoder(tiny_backbone, fused=False)(image))
    predictor, _ = set_image_features(tiny_backbone, image)
    decoder = PromptDecoder(tiny_backbone)
    decoder.set_embedding(cache.load("k"), image.shape[:2])
    h, w = image.shape[:2]
    point, label = np.array([[w // 2, h // 3]]), np.array([1])
    box = np.array([10, 20, w - 30, h - 5])
    for kw in [dict(point_coords=point, point_labels=label), dict(box=box[None]),
               dict(point_coords=point, point_labels=label, box=box[None])]:
        ref, _, _ = predictor.predict(multimask_output=False, **kw)
        got = decoder.predict(kw.get("point_coords"), kw.get("point_labels"),
                              None if "box" not in kw else box)
        assert got.shape == (h, w)
        np.testing.assert_array_equal(got, ref[0])


def test_cached_embedding_equals_a_fresh_one(tiny_backbone, synthetic_dir, tmp_path):
    ds = open_dataset(synthetic_dir).subset(4)
    emb32, stats = embed_dataset(ds, tiny_backbone, tmp_path, dtype="float32", progress=False)
    emb16, _ = embed_dataset(ds, tiny_backbone, tmp_path, dtype="float16", progress=False)
    fresh = ImageEncoder(tiny_backbone)(ds.image(2))
    np.testing.assert_array_equal(emb32[2], fresh)
    assert emb16[2].dtype == np.float16
    np.testing.assert_allclose(emb16[2].astype(np.float32), fresh, rtol=2e-3, atol=2e-3)
    assert stats.encoded == 4 and stats.reused == 0


def test_warm_rerun_encodes_nothing(tiny_backbone, synthetic_dir, tmp_path):
    ds = open_dataset(synthetic_dir).subset(3)
    embed_dataset(ds, tiny_backbone, tmp_path, progress=False)
    enc = ImageEncoder(tiny_backbone)
    _, stats = embed_dataset(ds, tiny_backbone, tmp_path, progress=False, encoder=enc)
    assert enc.passes == 0 and stats.reused == 3


def test_interrupted_run_leaves_no_partial_entry_and_rerun_resumes(
        tiny_backbone, synthetic_dir, tmp_path, monkeypatch):
    ds = open_dataset(synthetic_dir).subset(4)
    cache = EmbeddingCache.for_backbone(tmp_path, tiny_backbone)
    emb = DatasetEmbeddings(ds, cache)

    real_save, calls = np.save, []

    def dying_save(f, arr, **kw):          # crash half-way through the third write
        calls.append(1)
        if len(calls) == 3:
            f.write(b"\x93NUMPY partial")
            raise KeyboardInterrupt
        return real_save(f, arr, **kw)

    monkeypatch.setattr(np, "save", dying_save)   # io imports NumPy where it saves
    with pytest.raises(KeyboardInterrupt):
        emb.ensure(ImageEncoder(tiny_backbone), progress=False)
    monkeypatch.setattr(np, "save", real_save)
    files = sorted(p.name for p in cache.dir.rglob("*") if p.is_file())
    assert len([f for f in files if f.endswith(".npy")]) == 2     # two complete entries
    assert not [f for f in files if f.endswith(".tmp")]          # no half-written file
    enc = ImageEncoder(tiny_backbone)
    stats = emb.ensure(enc, progress=False)
    assert enc.passes == 2 and stats.encoded == 2 and stats.reused == 2


def test_damaged_entry_is_encoded_again(tiny_backbone, synthetic_dir, tmp_path):
    ds = open_dataset(synthetic_dir).subset(2)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path, progress=False)
    path = emb.cache.path(emb.keys[0])
    path.write_bytes(path.read_bytes()[:1000])                  # truncated on disk
    assert emb.missing() == [0]
    enc = ImageEncoder(tiny_backbone)
    emb.ensure(enc, progress=False)
    assert enc.passes == 1 and emb.missing() == []


def test_shots_are_read_whole_with_the_values_of_the_memory_map(
        tiny_backbone, synthetic_dir, tmp_path):
    from selfprompt.embeddings import CacheError, to_float32

    ds = open_dataset(synthetic_dir).subset(2)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path, progress=False)
    mapped, shots = emb[1], emb.take([1, 0])
    assert isinstance(mapped, np.memmap) and type(shots[0]) is np.ndarray  # a plain read
    np.testing.assert_array_equal(shots[0], mapped)
    assert shots[0].dtype == mapped.dtype == np.float16
    np.testing.assert_array_equal(to_float32(shots[1]), to_float32(emb[0]))
    assert to_float32(shots[1]).dtype == np.float32
    path = emb.cache.path(emb.keys[0])
    path.write_bytes(path.read_bytes()[:1000])                  # truncated on disk
    with pytest.raises(CacheError, match=f"{path.name}.*unreadable.*selfprompt embed"):
        shots[1]


def test_changed_image_or_checkpoint_is_never_served_stale(
        tiny_backbone, synthetic_dir, tmp_path):
    import shutil

    from selfprompt.models.backbone import load_backbone, make_tiny_checkpoint

    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    ds = open_dataset(data).subset(2)
    emb, _ = embed_dataset(ds, tiny_backbone, tmp_path / "c", progress=False)
    old_key = emb.keys[0]
    img = ds.image(0).copy()
    img[:10] = 0                                               # edit the image in place
    import cv2
    cv2.imwrite(str(ds.samples[0].image_path), img[..., ::-1])
    emb2 = DatasetEmbeddings(ds, emb.cache)
    assert emb2.keys[0] != old_key and emb2.missing() == [0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = load_backbone("tiny", make_tiny_checkpoint(tmp_path / "s1.pth", seed=1),
                              device="cpu")
    other_cache = EmbeddingCache.for_backbone(tmp_path / "c", other)
    assert other_cache.dir != emb.cache.dir
    assert DatasetEmbeddings(ds, other_cache).missing() == [0, 1]


def test_other_encoder_numerics_are_cached_apart(tiny_backbone, synthetic_dir, tmp_path):
    ds = open_dataset(synthetic_dir).subset(2)
    fast, _ = embed_dataset(ds, tiny_backbone, tmp_path, progress=False)     # the default
    assert fast.cache.dir.name.endswith("-fused")
    enc = ImageEncoder(tiny_backbone, fused=False)
    exact, stats = embed_dataset(ds, tiny_backbone, tmp_path, progress=False, encoder=enc)
    assert exact.cache.dir != fast.cache.dir and exact.cache.dir.name.endswith("-float16")
    assert stats.encoded == 2 and enc.passes == 2          # not served the fused entries
    np.testing.assert_allclose(np.asarray(fast[0], np.float32),
                               np.asarray(exact[0], np.float32), atol=2e-3)


def test_cache_folder_of_another_model_is_refused(tmp_path):
    c = EmbeddingCache(tmp_path, "tiny", "ab" * 32)
    (c.dir / "meta.json").write_text((c.dir / "meta.json").read_text().replace("ab", "cd"))
    with pytest.raises(CacheError, match="another model"):
        EmbeddingCache(tmp_path, "tiny", "ab" * 32)


def test_a_failed_cache_write_stops_the_run_and_the_rest_resumes(
        tiny_backbone, synthetic_dir, tmp_path, monkeypatch):
    """Cache writes run in a writer thread beside the encoder: a write that fails (a
    full disk) still stops the run with its own error, and a rerun encodes only what
    was not written."""
    ds = open_dataset(synthetic_dir).subset(5)
    cache = EmbeddingCache.for_backbone(tmp_path, tiny_backbone)
    emb = DatasetEmbeddings(ds, cache)
    real_save, calls = cache.save, []

    def full_disk(key, features):
        calls.append(key)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(key, features)

    monkeypatch.setattr(cache, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        emb.ensure(ImageEncoder(tiny_backbone), progress=False)
    monkeypatch.setattr(cache, "save", real_save)
    written = sum(cache.is_valid(k) for k in emb.keys)
    assert 1 <= written <= 4                       # the write before the failure, and
    enc = ImageEncoder(tiny_backbone)              # maybe later ones, are kept
    stats = emb.ensure(enc, progress=False)
    assert stats.reused == written and enc.passes == 5 - written
    np.testing.assert_array_equal(emb[4], ImageEncoder(tiny_backbone)(ds.image(4))
                                  .astype(np.float16))


def test_loader_processes_only_where_they_pay(tiny_backbone, synthetic_dir, tmp_path):
    from selfprompt.embeddings import default_workers

    assert default_workers(torch.device("cpu")) == 0
    assert 1 <= default_workers(torch.device("cuda")) <= 8  # a choice: no GPU needed
    ds = open_dataset(synthetic_dir).subset(3)
    one, _ = embed_dataset(ds, tiny_backbone, tmp_path / "a", progress=False, workers=0)
    two, _ = embed_dataset(ds, tiny_backbone, tmp_path / "b", progress=False, workers=2)
    for i in range(3):
        np.testing.assert_array_equal(one[i], two[i])


def test_usable_cores_is_the_affinity_capped_by_omp_num_threads(monkeypatch):
    """`make reproduce JOBS=n` shares the cores out through OMP_NUM_THREADS: the encoder's
    threads, the streamed fit's workers and the loader default all follow it; without it
    (or with nonsense) the process's CPU affinity decides."""
    import os

    from selfprompt.utils.device import usable_cores
    from selfprompt.models.encoder import use_all_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert usable_cores() == 4
    for value, expected in (("2", 2), ("16", 4), ("0", 4), ("two", 4), (" 1 ", 1)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert usable_cores() == expected, value
    threads = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert use_all_cores() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
