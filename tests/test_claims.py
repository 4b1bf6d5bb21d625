"""The numbers README.md and docs/reference.md quote are the committed rows' numbers.

Every generated block (``<!-- claims:NAME -->``) is recomputed from the committed
``results.csv.gz`` files and must equal the page; a block edited by hand, or left behind
by a regenerated study, is named; a study without rows renders "not computed".
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfprompt.evaluation import claims
from selfprompt.evaluation.claims import Arm, Claim, Ledger
from selfprompt.evaluation.results import write_results_gz

REPO = Path(__file__).resolve().parents[1]


def test_every_block_on_the_pages_equals_what_the_committed_rows_give():
    """The test that recomputes every number the README and docs/reference.md quote."""
    assert claims.stale(REPO) == []


def test_the_pages_carry_every_declared_block_and_no_unknown_one():
    on_pages = [name for page in claims.PAGES
                for name, _ in claims.blocks_of((REPO / page).read_text())]
    assert set(on_pages) <= set(claims.BLOCKS)
    assert set(claims.BLOCKS) == set(on_pages)
    for block in claims.BLOCKS.values():
        assert set(block.claim_ids()) <= set(claims.CLAIMS), block.name


def _copy_pages(tmp_path: Path) -> Path:
    for page in claims.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / page, tmp_path / page)
    (tmp_path / "reports").symlink_to(REPO / "reports")
    return tmp_path


def test_a_stale_block_is_named_and_the_command_line_exits_1(tmp_path, capsys):
    from selfprompt.cli import main

    root = _copy_pages(tmp_path)
    page = root / "docs" / "reference.md"
    text = page.read_text()
    assert "| −12.2 |" in text                      # LiteMedSAM: point + box vs box
    page.write_text(text.replace("| −12.2 |", "| −2.2 |", 1))
    assert main(["reference", "claims", "--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["docs/reference.md: block 'sweep' is stale: run python -m selfprompt "
                   "reference claims (make claims)"]
    assert main(["reference", "claims", "--root", str(root)]) == 0
    assert page.read_text() == text
    assert main(["reference", "claims", "--check", "--root", str(root)]) == 0


def test_an_unknown_block_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown claims block 'nope'"):
        claims.rewrite("<!-- claims:nope -->\n<!-- /claims -->\n", Ledger(tmp_path), "x.md")


def test_a_study_without_rows_renders_not_computed(tmp_path):
    missing = Claim("t-missing", "vit_t", "nowhere", Arm("persam"), Arm("box"), "t")
    assert claims.render(missing, REPO).startswith(
        "not computed (no reports/reference/kvasir/vit_t/nowhere/results.csv.gz; ")
    absent_variant = Claim("t-absent", "vit_t", "beyond", Arm("persam_noguide", "1"),
                           Arm("box", "1"), "t")
    assert "not computed (no rows for" in claims.render(absent_variant, REPO)
    block = claims.Comparisons("t", ("t-missing",)).render(
        Ledger(REPO, {"t-missing": missing}))
    assert "| not computed |" in block


def _rows(variant: str, shift) -> list[dict]:
    """Five folds of four images; ``shift(fold)`` added to every Dice of the fold."""
    return [{"dataset": "d", "image": f"f{f}i{i}", "fold": f, "k": "20", "seed": 42,
             "preset": "corrected", "backbone": "vit_t", "variant": variant,
             "dice": 0.5 + 0.01 * f + 0.002 * i + shift(f), "iou": 0.4,
             "empty_prediction": False, "counted": True, "draw": 0}
            for f in range(5) for i in range(4)]


def test_a_fragment_states_the_difference_its_interval_units_and_holm(tmp_path):
    """Unit-level statistics: five folds of four images are five units, not twenty; a
    steady gain is ahead, one that changes sign from fold to fold is not."""
    folder = tmp_path / claims.REFERENCE / "vit_t" / "s"
    folder.mkdir(parents=True)
    write_results_gz(_rows("box", lambda f: 0.0) + _rows("up", lambda f: 0.1 + 0.01 * (f % 2))
                     + _rows("wobble", lambda f: 0.05 if f % 2 else -0.05),
                     folder / "results.csv.gz")
    own = {c.id: c for c in (
        Claim("up", "vit_t", "s", Arm("up"), Arm("box"), "f"),
        Claim("wobble", "vit_t", "s", Arm("wobble"), Arm("box"), "f"),
        Claim("mean", "vit_t", "s", Arm("box")))}
    ledger = Ledger(tmp_path, own)
    up = ledger.outcome("up")
    assert (up.units, up.images, up.family_size, up.verdict) == (5, 20, 2, "ahead")
    assert up.diff == pytest.approx(10.4) and up.ci_low > 9 and up.ci_high < 12
    assert up.p_holm == pytest.approx(2 * up.p)          # the smaller of two p-values
    assert ledger.render("up").startswith("+10.4 points (95 % CI ")
    assert ledger.render("up").endswith(" 5 units, 20 images, Holm p < 0.001 over 2): ahead")
    assert ledger.render("wobble").endswith(": no difference shown")
    assert ledger.render("mean") == ("52.3 % Dice ± 1.6 (± : sd of the 5 unit means, "
                                     "ddof=1; 20/20 images counted)")


def test_a_committed_table_is_quoted_as_it_stands_and_its_absence_said(tmp_path):
    folder = tmp_path / claims.REFERENCE / "vit_t" / "beyond"
    folder.mkdir(parents=True)
    (folder / "table_x.csv").write_text("k,auto,gap\n1,61.2,-3.4\n20,70.0,-0.5\n")
    block = claims.CommittedTable("x", "beyond/table_x.csv", ("vit_t", "medsam_lite"),
                                  (("k", "k"), ("gap", "auto − oracle")), "a note")
    lines = block.render(Ledger(tmp_path)).splitlines()
    assert lines[2:5] == ["| MobileSAM | 1 | -3.4 |", "| MobileSAM | 20 | -0.5 |",
                          "| LiteMedSAM | not computed | |"]
    assert lines[-1] == "*a note*"
