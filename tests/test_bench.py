"""``make bench`` at tiny size: it runs, prints its table, and counts passes right.

Not a timed test: the numbers are not checked, only the table's shape and the counts
(the kit's sweep: 1 pass per image, 0 on a warm rerun; the authors' flow: k + 2 per
test image for every (k, fold)).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
from benchmarks.bench.common import backbone_or_row, run_child  # noqa: E402
from benchmarks.bench.options import parse_args  # noqa: E402
from benchmarks.bench.run import main  # noqa: E402
from benchmarks.bench.speed import masked_attention_route  # noqa: E402
from benchmarks.bench.sweep import analytic_passes  # noqa: E402
from benchmarks.bench.table import COLUMNS, Table, measuring  # noqa: E402


def test_analytic_counts():
    # Kvasir-SEG: 1000 images, 5 folds of 800/200, k = 10, 20, 40, all
    assert analytic_passes(1000, 5, ["10", "20", "40", "all"]) == 5 * (10 + 20 + 40 + 800) \
        + 4 * 5 * 2 * 200
    assert analytic_passes(1000, 5, ["all"], kit=True) == 1000


def test_a_backbone_that_cannot_be_built_gets_a_row_saying_why():
    rows = []
    assert backbone_or_row("no_such_model", "cpu", rows, "no_such_model cpu: end to end") is None
    assert rows == [("2", "no_such_model cpu: end to end", "n/a", "",
                     "unknown model type 'no_such_model'; known")]


def test_a_backbone_that_fails_otherwise_is_a_failure_not_n_a(monkeypatch):
    """Only the kit's "cannot be built here" is "n/a"; running out of memory on the way to
    a GPU is the measurement's failure, and says so."""
    import benchmarks.bench.common as common

    def out_of_memory(model, device="cpu"):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(common, "random_backbone", out_of_memory)
    rows = []
    with measuring(rows, "3", "vit_h encoder (cuda): built, MACs counted"):
        backbone_or_row("vit_h", "cuda", rows, "vit_h encoder (cuda)")
    assert rows == [("3", "vit_h encoder (cuda): built, MACs counted", "failed", "",
                     "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")]


def test_masked_attention_route_is_undone_afterwards():
    """The GPU grid's comparison row switches the attention route for itself only."""
    import selfprompt.models.encoder as encoder_module

    kept = encoder_module.BIAS_IN_PRODUCTS
    assert "cuda" in kept
    with pytest.raises(RuntimeError), masked_attention_route():
        assert encoder_module.BIAS_IN_PRODUCTS == ()
        raise RuntimeError("a row that fails")
    assert encoder_module.BIAS_IN_PRODUCTS == kept


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_only_without_a_gpu_says_so(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--gpu-only"])
    assert stop.value.code == 2
    assert "--gpu-only needs a CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_script_stops_at_once_without_a_gpu(tmp_path):
    """benchmarks/gpu.sh, the one prepared run for a lent GPU: here it must fail fast and
    say why, not spend minutes on CPU rows."""
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path),
                               "WHEELS": str(tmp_path / "none")})
    assert done.returncode == 2
    assert "--gpu-only needs a CUDA device" in (tmp_path / "bench_gpu.log").read_text()


def test_gpu_carry_copies_the_first_pairs_and_sizes_the_load(tmp_path, synthetic_dir):
    """benchmarks/gpu_carry.sh, which prepares what the borrowed machine cannot fetch: the
    first N pairs, as the kit pairs them, in a folder the kit reads back the same."""
    import subprocess

    from selfprompt.datasets.reader import open_dataset

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_carry.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": sys.executable, "SRC": str(synthetic_dir),
                               "N": "4", "WHEELS": "none", "DEST": str(tmp_path / "carry")})
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "carry" / synthetic_dir.name
    original, carried = open_dataset(synthetic_dir).subset(4), open_dataset(copy)
    assert [s.name for s in carried.samples] == [s.name for s in original.samples]
    for a, b in zip(original.samples, carried.samples):
        assert a.image_path.read_bytes() == b.image_path.read_bytes()
        assert a.mask_path.read_bytes() == b.mask_path.read_bytes()
    assert f"carry: {tmp_path / 'carry'} (" in done.stdout
    assert done.stdout.splitlines()[-1] == (f"command: DATA={copy} OUT=$OUT bash "
                                            "benchmarks/gpu.sh --stages-images 4")


def test_gpu_carry_without_a_data_set_says_so(tmp_path):
    import subprocess

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_carry.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": sys.executable, "WHEELS": "none",
                               "SRC": str(tmp_path / "nothing"), "DEST": str(tmp_path)})
    assert done.returncode == 2 and "no data set at" in done.stderr


@pytest.mark.slow
def test_bench_tiny(tmp_path, capsys, synthetic_dir, monkeypatch):
    out = tmp_path / "bench.md"
    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))  # section 5's cache
    assert main(["--data", str(synthetic_dir), "--images", "6", "--folds", "2", "--k", "1",
                 "all", "--speed", "tiny:1;medsam_lite:1", "--precisions", "fp32", "bf16",
                 "--e2e", "tiny:2", "--e2e-images", "4",
                 "--no-gpu", "--cpu-bf16-models", "tiny",
                 "--memory-images", "3", "--no-memory-backbone",
                 "--memory-encode", "1", "--memory-encoder-model", "tiny", "--mm-size", "256",
                 "--warmup", "0", "--workers", "0", "--stages-backbone", "tiny",
                 "--stages-images", "12", "--stages-k", "2", "--stages-test", "3",
                 "--stages-bf16", "--predict-images", "3", "--predict-k", "2",
                 "--predict-backbone", "tiny", "--predict-prompt", "box", "--predict-n", "3", "6",
                 "--sweep-runs", str(tmp_path / "no-sweep"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if ln.startswith("|")]
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert all(len(r) == len(COLUMNS) for r in rows)
    assert {r[0] for r in rows} == {"1", "2", "3", "4", "5", "6"}
    by_name = {r[1]: r for r in rows}
    # 6 images, 2 folds of 3/3: authors' = sum over k=1, all(3) of 2 * (k + 2 * 3)
    assert int(by_name["authors' flow: encoder passes"][2]) == 2 * (1 + 6) + 2 * (3 + 6) == 32
    assert int(by_name["kit flow (cold cache): encoder passes"][2]) == 6
    assert int(by_name["kit flow (warm rerun): encoder passes"][2]) == 0
    assert by_name["full size: kit passes (cold / warm)"][2] == "1000 / 0"
    assert "mean Dice point+box: kit bf16 encoder" in by_name
    assert "mean Dice point+box: kit exact encoder" in by_name
    assert "tiny cpu batch 1 fp32 exact-encoder: embedding vs fp32" in by_name
    assert "tiny cpu batch 1 bf16: encoder speed" in by_name
    assert "tiny cpu batch 1 bf16: embedding vs fp32" in by_name
    # LiteMedSAM at its own 256 x 256 frame, with the 60 %-of-peak target stated
    assert by_name["medsam_lite encoder MACs per image"][4] == "FlopCounterMode, 256 x 256"
    assert 20 < float(by_name["medsam_lite encoder MACs per image"][2]) < 60  # GMAC
    assert "target 60 %" in by_name["medsam_lite cpu batch 1 fp32: achieved rate"][4]
    # TinyViT's fused copy (opt-in) timed beside the default, with its distance to it
    assert "target 60 %" in by_name["medsam_lite cpu batch 1 fp32 fused-encoder: achieved "
                                    "rate"][4]
    fused = by_name["medsam_lite cpu batch 1 fp32 fused-encoder: embedding vs fp32"]
    assert float(fused[2]) < 1e-4
    # the whole embedding step, beside the encoder-only rate at the same batch
    e2e = by_name["tiny cpu batch 2 fp32: end to end (embed)"]
    assert float(e2e[2]) > 0 and e2e[4].startswith("4 images of ")
    assert re.search(r"\d+ % of the encoder-only [\d.e+]+ images/s$", e2e[4])
    assert any(r[1].startswith("peak RSS: k = all fold, paper preset") for r in rows)
    assert "peak RSS: encoding, tiny kit encoder" in by_name
    assert "peak RSS: encoding, tiny exact encoder" in by_name
    # 5: the stages after encoding, both decoders on the same test images (fold 0 of 12: 2)
    assert "tiny on cpu" in by_name["cpu: classifier fit"][4]
    batched = by_name["cpu: per test image, SAM decode (3 variants, one batched call)"]
    # (which of them agree bit for bit is for the bench to report, not to assert: a
    # boundary pixel may round the other way on another CPU; tests/test_batchdecode.py
    # holds the tolerance)
    assert re.search(r"identical masks on \d of 2 images", batched[4])
    # the bf16 encoder's effect on Dice: fold 0 (its 2 test images), every variant
    bf16 = by_name["tiny cpu bf16 encoder: mean Dice change"]
    assert re.search(r"linear [-+][\d.]+, point [-+][\d.]+, box [-+][\d.]+, "
                     r"point_box [-+][\d.]+\); random weights.*fold 0, 2 test images", bf16[4])
    changes = [abs(float(c)) for c in re.findall(r"[-+][\d.]+(?=[,)])", bf16[4])]
    assert len(changes) == 4 and abs(float(bf16[2])) == max(changes)
    if not torch.cuda.is_available():
        assert by_name["cuda: sweep stages, bf16 Dice change"][2] == "not measured"
        assert by_name["cuda: encoder speed, rate, GPU memory, end to end, compiled"][2] == \
            "not measured"
    assert by_name["measured sweep after encoding (make reproduce)"][2] == "not measured"
    # 6: predict on a folder, cold then warm, the warm image's time taken apart; peaks by size
    assert by_name["predict, cold cache: end to end"][4].startswith("3 images of ")
    warm = by_name["predict, warm cache: after encoding"][4]
    assert all(part in warm for part in ("SAM decoder", "classifier and prompt", "write PNGs"))
    assert re.match(r"bound by (the decoder|the kit): ",
                    by_name["predict, warm cache: decoder share"][4])
    assert {f"predict peak RSS: {n} images, {c} cache" for n in (3, 6) for c in ("cold", "warm")
            } <= set(by_name)
    assert "predict peak RSS growth, warm cache" in by_name
    assert not [r for r in rows if r[2] == "failed"]
    text = out.read_text()
    assert text.splitlines()[2].startswith("`python -m benchmarks.bench --data ")
    assert re.search(r", kit \S+, torch \S+, .+ \(\d+ CPUs\); \d+ s in all\.", text)
    assert text.count("\n|") == len(lines)
    assert "NOT FINISHED" not in text


def test_table_is_on_disk_row_by_row(tmp_path, capsys):
    """A run cut short (a borrowed GPU's time limit) leaves the rows measured so far."""
    out = tmp_path / "bench.md"
    rows = Table(out, time.perf_counter())
    rows.append(("2", "first", "1.5", "images/s", ""))
    assert "NOT FINISHED" in out.read_text() and "| 2 | first | 1.5 |" in out.read_text()
    rows += [("3", "second", "7", "GMAC/s", ""), ("4", "third", "2", "GiB", "")]
    assert out.read_text().count("\n|") == 2 + 3
    assert capsys.readouterr().out.splitlines()[-1] == "| 4 | third | 2 | GiB |  |"
    rows.write(done=True)
    assert "NOT FINISHED" not in out.read_text() and "s in all." in out.read_text()


def test_a_measurement_that_raises_becomes_a_failed_row(tmp_path):
    rows = Table(tmp_path / "bench.md", time.perf_counter())
    with measuring(rows, "2", "vit_h cuda batch 16 bf16: encoder speed"):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore lines")
    with measuring(rows, "2", "vit_t cuda batch 1 fp32: encoder speed"):
        rows.append(("2", "vit_t cuda batch 1 fp32: encoder speed", "90", "images/s", ""))
    assert rows == [("2", "vit_h cuda batch 16 bf16: encoder speed", "failed", "",
                     "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"),
                    ("2", "vit_t cuda batch 1 fp32: encoder speed", "90", "images/s", "")]
    assert rows.failed == rows[:1]
    assert "1 failed" in (tmp_path / "bench.md").read_text()


def test_gpu_rows_state_the_targets_verdicts(monkeypatch):
    """The GPU rows' verdicts, which only a borrowed GPU prints, checked here with the
    measurement replaced: 300 images/s for vit_b in bf16 at batch 16 or more, under 8 GiB
    at batch 32; the fp32 rows and batch 1 have no target."""
    import types

    import benchmarks.bench.speed as bench_speed
    from benchmarks.bench.measure import Speed

    speed = {}
    monkeypatch.setattr(bench_speed, "encoder_speed", lambda backbone, b, p, *a, **k: Speed(
        speed[b, p], torch.zeros(256, 64, 64), 7.5 * 2**30 if b == 32 else 9 * 2**30, 1.0))
    vit_b = types.SimpleNamespace(model_type="vit_b", device=torch.device("cuda"))
    args = parse_args(["--no-gpu"])
    rows = []
    speed.update({(32, "bf16"): 310.0, (16, "bf16"): 290.0, (1, "bf16"): 60.0,
                  (32, "fp32"): 27.0})
    for b, p in speed:
        bench_speed.variant_rows(args, rows, vit_b, f"vit_b cuda batch {b} {p}", (b, p, None),
                                 macs=370e9, peak=780e12 if p == "bf16" else 50e12)
    by_name = {r[1]: r for r in rows}
    assert by_name["vit_b cuda batch 32 bf16: achieved rate"][4].endswith(
        "target 300 images/s: met")
    assert by_name["vit_b cuda batch 16 bf16: achieved rate"][4].endswith(
        "target 300 images/s: NOT met")
    assert "target" not in by_name["vit_b cuda batch 1 bf16: achieved rate"][4]
    assert "target" not in by_name["vit_b cuda batch 32 fp32: achieved rate"][4]
    assert by_name["vit_b cuda batch 32 bf16: peak GPU memory"][2:] == (
        "7.50", "GiB", "torch.cuda.max_memory_allocated; target under 8 GiB: met")
    assert by_name["vit_b cuda batch 16 bf16: peak GPU memory"][4] == \
        "torch.cuda.max_memory_allocated"
    # 310 images/s x 370 GMAC of a 780 TMAC/s peak: 14.7 %
    assert by_name["vit_b cuda batch 32 bf16: achieved rate"][2] == f"{310 * 370:.1f}"
    assert by_name["vit_b cuda batch 32 bf16: achieved rate"][4].startswith(
        "15 % of the bf16 matmul peak")


@pytest.mark.skipif(not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++")),
                    reason="torch.compile's CPU code needs a C++ compiler")
def test_compiled_rows_compare_with_the_uncompiled_encoder():
    from benchmarks.bench.compiled import compiled_rows

    rows = []
    compiled_rows(parse_args(["--compile", "tiny:1", "--no-gpu", "--warmup", "0",
                              "--reps", "1"]), rows)
    assert len(rows) == 1, rows
    section, name, value, unit, detail = rows[0]
    assert (section, name, unit) == ("2", "tiny cpu batch 1 fp32 compiled: encoder speed",
                                     "images/s")
    assert float(value) > 0
    m = re.fullmatch(r"torch.compile: [\d.]+x the uncompiled [\d.e+]+ images/s; first batch "
                     r"\(compiling\) \d+ s; embedding max abs from uncompiled (\S+) "
                     r"\(relative (\S+)\)", detail)
    assert m and float(m[2]) < 1e-4, detail  # the same encoder, up to float rounding


def test_a_failed_child_is_named_by_its_last_line(tmp_path):
    rows = Table(tmp_path / "bench.md", time.perf_counter())
    with measuring(rows, "5", "cpu: sweep stages"):
        run_child("stages", parse_args(["--data", str(tmp_path / "no-such-folder"),
                                        "--stages-backbone", "tiny"]))
    assert rows[0][:3] == ("5", "cpu: sweep stages", "failed")
    assert rows[0][4].startswith("RuntimeError: stages child failed: ")
    assert "data folder does not exist" in rows[0][4]


def test_the_bench_goes_on_after_a_failed_section_and_exits_1(tmp_path, monkeypatch, capsys):
    import benchmarks.bench.run as run

    def broken(args, rows):
        raise ValueError("no such data set")

    monkeypatch.setattr(run, "sweep_section", broken)
    out = tmp_path / "bench.md"
    assert main(["--skip-speed", "--memory-encode", "0", "--memory-images", "0",
                 "--stages-test", "0", "--sweep-runs", str(tmp_path / "none"),
                 "--out", str(out)]) == 1
    text = out.read_text()
    assert "| 1 | sweep: kit flow against the authors' | failed |  | ValueError: no such " \
           "data set |" in text
    assert "| measured sweep after encoding (make reproduce) | not measured |" in text
    assert "1 row(s) failed: sweep: kit flow against the authors'" in capsys.readouterr().err


def test_a_measured_sweep_is_what_its_folds_recorded(tmp_path):
    import json

    from benchmarks.bench.sweep_timing import measured_sweep

    assert measured_sweep(tmp_path) is None
    (tmp_path / "notebooks").mkdir()
    for i, (start, end) in enumerate([("10:00:00", "10:01:40"), ("10:00:30", "10:03:00")]):
        fold = tmp_path / "corrected" / "k10" / f"fold{i}.json"
        fold.parent.mkdir(parents=True, exist_ok=True)
        fold.write_text(json.dumps({"seconds": {"fit": 10.0, "replay": 0.0, "segment": 60.0},
                                    "environment": {"torch_threads": 1}}))
        pm = {"start_time": f"2026-11-28T{start}+00:00", "end_time": f"2026-11-28T{end}+00:00",
              "duration": 100.0 if i == 0 else 150.0}
        (tmp_path / "notebooks" / f"05_evaluate_corrected_k10_fold{i}.ipynb").write_text(
            json.dumps({"metadata": {"papermill": pm}}))
    (tmp_path / "notebooks" / "05_evaluate_corrected_k10_fold2.tmp.ipynb").write_text("{}")
    m = measured_sweep(tmp_path)
    assert m["folds"] == m["notebooks"] == 2 and m["threads"] == [1]
    assert m["wall"] == 180.0                          # first start to last end, side by side
    assert m["stage"] == {"fit": 20.0, "replay": 0.0, "segment": 120.0, "notebook rest": 110.0}


def test_the_decoder_clock_counts_outermost_calls_once_and_restores(monkeypatch):
    """Section 6 splits ``predict``'s time into the decoder and the rest: a decoder method
    called inside another (``variants`` -> ``predict``) must not be counted twice."""
    import benchmarks.bench.predict as bench_predict
    from selfprompt.decode import PromptDecoder

    ticks = iter(range(100))  # a clock that advances by one at each reading
    monkeypatch.setattr(bench_predict.time, "perf_counter", lambda: float(next(ticks)))
    monkeypatch.setattr(PromptDecoder, "predict", lambda self, *a, **kw: "mask")
    monkeypatch.setattr(PromptDecoder, "variants", lambda self, *a, **kw: self.predict())
    stubs = {n: PromptDecoder.__dict__[n] for n in ("set_embedding", "predict", "variants")}
    decoder = object.__new__(PromptDecoder)
    with bench_predict.decoder_clock() as spent:
        assert decoder.variants() == "mask"
        # outer start 0, inner start 1, outer end 2: counting the inner call too gives 4
        assert spent == [2.0]
    assert {n: PromptDecoder.__dict__[n] for n in stubs} == stubs
    assert decoder.variants() == "mask" and spent == [2.0]  # no longer counted
