"""End to end through the command line, as a user runs it."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfprompt.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "selfprompt", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


GROUPS = {"the method": ["check", "embed", "run", "summarise", "progress"],
          "your own images": ["suggest", "predict"],
          "data and weights": ["datasets", "assets", "fetch", "synthetic", "preflight"],
          "evaluation": ["ablations", "reference"],
          "teaching": ["exercises", "classroom", "book", "bundle"],
          "the kit": ["provenance", "notebooks", "lab"]}


def test_help_lists_every_command_in_its_group():
    from selfprompt.cli import build_parser

    out = run_cli("--help").stdout
    heads = [out.index(f"  {title}:\n") for title in GROUPS]
    assert heads == sorted(heads)  # the groups in this order
    for (title, commands), start, end in zip(GROUPS.items(), heads, heads[1:] + [len(out)]):
        listed = [line.split()[0] for line in out[start:end].splitlines()[1:]
                  if line.startswith("    ")]
        assert listed == commands, title
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) - {"summarize"} == {c for cs in GROUPS.values() for c in cs}
    assert "--k" in run_cli("run", "--help").stdout


def test_no_module_but_the_command_line_has_a_main():
    package = Path(__file__).resolve().parents[1] / "selfprompt"
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("cli/") or rel == "__main__.py":
            continue
        text = path.read_text()
        assert "def main(" not in text and "__name__ == \"__main__\"" not in text, rel


def test_the_parser_and_the_bundle_commands_need_the_standard_library_only(tmp_path):
    # -S: no site-packages (no NumPy), as on a lab machine before `make install-offline`
    probe = ("import sys; from selfprompt.cli import build_parser; build_parser(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('numpy', 'torch', 'cv2', 'sklearn', 'tqdm')))")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-S", "-c", probe], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    proc = subprocess.run([sys.executable, "-S", "-m", "selfprompt", "bundle", "verify",
                           str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr and "manifest.json" in proc.stderr


def test_the_studies_named_for_help_are_the_studies():
    from selfprompt.cli.evaluation import REFERENCE_DIR, STUDIES
    from selfprompt.evaluation.ablations import STUDIES as studies
    from selfprompt.evaluation.reference import DEFAULT_DIR

    assert STUDIES == tuple(studies) and REFERENCE_DIR == DEFAULT_DIR


def test_debug_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    assert main(["-q", "check", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(Exception):
        main(["-q", "--debug", "check", str(tmp_path)])


def test_bad_data_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"x")
    assert main(["-q", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a.jpg: no mask" in err and "Traceback" not in err


def test_missing_checkpoint_and_absent_gpu_are_clear_errors(tmp_path, capsys, synthetic_dir):
    ckpt = tmp_path / "sam_vit_b_01ec64.pth"
    assert main(["-q", "embed", str(synthetic_dir), "--checkpoint", str(ckpt),
                 "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "make checkpoints" in err and "Traceback" not in err
    import torch

    if not torch.cuda.is_available():
        assert main(["-q", "embed", str(synthetic_dir), "--backbone", "tiny", "--device", "cuda",
                     "--checkpoint", str(tmp_path / "t.pth"), "--cache", str(tmp_path / "c")]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.slow
def test_five_fold_run_on_real_kvasir_with_the_tiny_backbone(
        kvasir_dir, tmp_path, tiny_checkpoint):
    out = tmp_path / "run"
    proc = run_cli("-q", "run", kvasir_dir, "--limit", 15, "--backbone", "tiny", "--checkpoint",
                   tiny_checkpoint, "--k", 2, "--cache", tmp_path / "cache", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| kvasir | tiny | paper | 2 | point_box |" in proc.stdout
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 2 * 15 * 4                              # presets x images x variants
    assert {r["fold"] for r in rows} == {"0", "1", "2", "3", "4"}
    for preset in ["paper", "corrected"]:
        images = [r["image"] for r in rows if r["preset"] == preset and r["variant"] == "box"]
        assert len(images) == len(set(images)) == 15            # every image tested once
    assert all(0 <= float(r["dice"]) <= 1 for r in rows)
    plan = json.loads((out / "folds.json").read_text())
    assert plan["n_images"] == 15 and plan["names"] == sorted(plan["names"])
    tested = sorted(i for f in plan["folds"] for i in f["test"])
    assert tested == list(range(15))
    for f, shots in zip(plan["folds"], plan["shots"]["2"]):
        assert set(shots) <= set(f["train"])
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert {s["fold"] for s in summary} == {"0", "1", "2", "3", "4", "all"}
    # a warm rerun encodes nothing and recomputes nothing
    again = run_cli("run", kvasir_dir, "--limit", 15, "--backbone", "tiny", "--checkpoint",
                    tiny_checkpoint, "--k", 2, "--cache", tmp_path / "cache", "--out", out)
    assert again.returncode == 0 and "0 encoded, 15 reused" in again.stdout


def test_check_a_published_layout_and_a_declared_one(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published import make_busi, make_ph2

    make_busi(tmp_path / "busi")
    assert main(["-q", "check", str(tmp_path / "busi"), "--cache", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "4 image/mask pairs, layout busi: OK" in out and "several lesion masks" in out
    cases = make_ph2(tmp_path / "ph2") / "PH2 Dataset images"
    assert main(["-q", "check", str(cases), "--images", "*/*_Dermoscopic_Image/*.bmp",
                 "--masks", "*/*_lesion/*.bmp", "--pair", r"(?P<key>IMD\d+)_lesion",
                 "--cache", str(tmp_path / "c")]) == 0
    assert "3 image/mask pairs, layout folder: OK" in capsys.readouterr().out
    # the same without a rule: masks pair with the image whose stem begins theirs
    assert main(["-q", "check", str(cases), "--images", "*/*_Dermoscopic_Image/*.bmp",
                 "--masks", "*/*_lesion/*_lesion.bmp", "--cache", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "3 image/mask pairs, layout folder: OK" in out
    assert "masks are named image + '_lesion' (3)" in out
    (cases / "IMD003" / "IMD003_lesion" / "IMD003_lesion.bmp").unlink()
    assert main(["-q", "check", str(cases), "--images", "*/*_Dermoscopic_Image/*.bmp",
                 "--masks", "*/*_lesion/*_lesion.bmp", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "IMD003.bmp: no mask (no file of '*/*_lesion/*_lesion.bmp' is named 'IMD003'" in err
    assert "Traceback" not in err
    assert main(["-q", "check", str(cases), "--images", "*/*.png", "--masks",
                 "*/*_lesion/*.bmp", "--cache", str(tmp_path / "c")]) == 2
    assert "'*/*.png' matches no image file" in capsys.readouterr().err


def test_datasets_lists_the_registry_and_fetch_explains_registration(tmp_path, capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ["kvasir", "isic2018", "cvc-clinicdb", "ph2", "busi", "CC BY-NC 4.0"]:
        assert name in out
    assert main(["datasets", "busi"]) == 0
    assert "Al-Dhabyani" in capsys.readouterr().out
    assert main(["fetch", "data", "--dataset", "cvc-clinicdb", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "polyp.grand-challenge.org" in err and "DATA_DIR_cvc-clinicdb=" in err
