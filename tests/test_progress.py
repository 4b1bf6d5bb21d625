"""The overall line of a long job: fold i of N, time so far and left, Dice so far.

On a real tiny run (``run``) and on the files ``make reproduce`` leaves (``progress``); under
``-q`` there is none, and nothing a run prints on standard output or writes changes.
"""
import csv
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from selfprompt.cli import main
from selfprompt.evaluation.progress import SweepProgress, duration, targets_line

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"fold (\d+)/(\d+) · (.+?) so far( · ~(.+?) left| · done)?"
                  r"( · (\w+) Dice so far (\d\.\d\d) \((\d+) images?\))?$")


def _fold(path: Path, dice: dict[str, list[float]], counted: bool = True) -> Path:
    """A finished fold as the protocol leaves it: its CSV, then its JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "variant", "dice", "counted"])
        w.writeheader()
        for variant, values in dice.items():
            for i, d in enumerate(values):
                w.writerow({"image": f"im{i}", "variant": variant, "dice": d,
                            "counted": counted})
    path.with_suffix(".json").write_text("{}")
    return path.with_suffix(".json")


def test_durations_read_as_a_person_waits():
    assert [duration(s) for s in (0, 42.4, 59.6, 61, 719, 3599, 3600, 3900, 7322)] == [
        "0 s", "42 s", "1 min", "1 min", "12 min", "1 h 00 min", "1 h 00 min", "1 h 05 min",
        "2 h 02 min"]


def test_the_line_counts_folds_times_the_rest_and_averages_the_method(tmp_path):
    now = [100.0]
    progress = SweepProgress(4, quiet=True, clock=lambda: now[0])
    now[0] += 60
    a = _fold(tmp_path / "a" / "fold0.json", {"point_box": [0.8, 0.6], "linear": [0.1]})
    assert progress.fold_done(a.with_suffix(".csv")) == (
        "fold 1/4 · 1 min so far · ~3 min left · point_box Dice so far 0.70 (2 images)")
    # a finished fold found and skipped: counted as done, not as timed
    now[0] += 1
    b = _fold(tmp_path / "b" / "fold1.json", {"point_box": [1.0], "linear": [0.0]})
    assert progress.fold_done(b.with_suffix(".csv"), computed=False) == (
        "fold 2/4 · 1 min so far · ~2 min left · point_box Dice so far 0.80 (3 images)")
    now[0] += 119
    c = _fold(tmp_path / "c" / "fold2.json", {"point_box": [0.2]}, counted=False)
    assert progress.fold_done(c.with_suffix(".csv")) == (  # rows left out of the means (D2)
        "fold 3/4 · 3 min so far · ~1 min left · point_box Dice so far 0.80 (3 images)")
    now[0] += 30
    assert progress.fold_done(None).startswith("fold 4/4 · 4 min so far · done · ")
    # a run that scores no point_box names the variant it reports
    only = SweepProgress(1, quiet=True, clock=lambda: 0.0)
    d = _fold(tmp_path / "d" / "fold0.json", {"linear": [0.5, 0.7]})
    assert only.fold_done(d.with_suffix(".csv")).endswith("linear Dice so far 0.60 (2 images)")


def test_quiet_prints_nothing_and_counts_the_same(tmp_path, capsys):
    a = _fold(tmp_path / "fold0.json", {"point_box": [0.5]}).with_suffix(".csv")
    loud, quiet = SweepProgress(2, clock=lambda: 0.0), SweepProgress(2, quiet=True,
                                                                     clock=lambda: 0.0)
    assert loud.fold_done(a) == quiet.fold_done(a)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == loud.line(0.0)


def test_make_s_line_reads_the_targets_finished_so_far(tmp_path, capsys):
    """Each fold target of make reproduce is a process of its own: the line comes from
    the fold files and the job's start; folds finished before the start (a resumed job)
    count as done but do not time the rest."""
    since = 1_000_000.0
    old = _fold(tmp_path / "paper/k2/fold0.json", {"point_box": [0.4]})
    os.utime(old, (since - 500, since - 500))
    new = _fold(tmp_path / "paper/k2/fold1.json", {"point_box": [0.6, 0.8]})
    os.utime(new, (since + 100, since + 100))
    half = tmp_path / "corrected/k2/fold0.json"  # interrupted: its CSV, no JSON
    _fold(half, {"point_box": [0.0]}).unlink()
    targets = [old, new, half, tmp_path / "corrected/k2/fold1.json"]
    assert targets_line(targets, since, now=since + 120) == (
        "fold 2/4 · 2 min so far · ~4 min left · point_box Dice so far 0.60 (3 images)")
    assert targets_line(targets[:1] + targets[2:], since, now=since + 5) == (
        "fold 1/3 · 5 s so far · point_box Dice so far 0.40 (1 image)")  # nothing timed
    # the command make calls: the line on standard error, none under -q
    args = ["progress", "--since", str(since), *map(str, targets)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and LINE.match(captured.err.strip())
    assert main(["-q", *args]) == 0
    assert capsys.readouterr() == ("", "")


def _files(root: Path) -> dict[str, str]:
    """Every result a run writes, by path: the tables and each fold's CSV (a fold's JSON
    holds its own wall times, which no two runs share)."""
    return {p.relative_to(root).as_posix(): p.read_text()
            for p in sorted(root.rglob("*")) if p.suffix in (".csv", ".md")}


@pytest.mark.slow
def test_a_tiny_run_says_where_it_stands_and_quiet_changes_nothing_else(
        synthetic_dir, tiny_checkpoint, tmp_path, capsys):
    common = [str(synthetic_dir), "--backbone", "tiny", "--checkpoint", str(tiny_checkpoint),
              "--k", "2", "4", "--folds", "0", "1", "--presets", "corrected",
              "--cache", str(tmp_path / "cache")]
    assert main(["-q", "embed", *common[:5], "--cache", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert main(["run", *common, "--out", str(tmp_path / "loud")]) == 0
    loud = capsys.readouterr()
    lines = [LINE.match(t.strip()) for t in re.split(r"[\r\n]", loud.err)
             if t.strip().startswith("fold ")]
    assert [(m.group(1), m.group(2)) for m in lines] == [(str(i), "4") for i in (1, 2, 3, 4)]
    assert all(m.group(7) == "point_box" for m in lines)
    assert all(m.group(5) for m in lines[:3]) and lines[3].group(4) == " · done"
    # its Dice so far is the mean of the finished folds' counted point_box rows
    rows = [r for p in sorted((tmp_path / "loud").rglob("fold*.csv"))
            for r in csv.DictReader(open(p)) if r["variant"] == "point_box"
            and r["counted"] == "True"]
    assert float(lines[3].group(8)) == pytest.approx(
        sum(float(r["dice"]) for r in rows) / len(rows), abs=0.005)
    assert int(lines[3].group(9)) == len(rows)

    assert main(["-q", "run", *common, "--out", str(tmp_path / "quiet")]) == 0
    quiet = capsys.readouterr()
    assert "fold 1/4" not in quiet.err and "so far" not in quiet.err
    assert quiet.out.replace(str(tmp_path / "quiet"), str(tmp_path / "loud")) == loud.out
    assert _files(tmp_path / "quiet") == _files(tmp_path / "loud")  # nor anything it writes
    # a rerun finds every fold finished: it says so at once and computes nothing
    assert main(["run", *common, "--out", str(tmp_path / "loud")]) == 0
    again = capsys.readouterr().err
    assert "fold 4/4" in again and " left" not in again


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_reproduce_says_where_it_stands_after_each_fold(tmp_path):
    """After each fold target (a papermill process of its own), one call that reads every
    target of the job; QUIET=1 leaves it out. Checked with make -n: nothing runs."""
    def dry(*extra):
        proc = subprocess.run(["make", "-n", "reproduce", "MODEL=tiny", "K=2 4", "FOLDS=0 1",
                               "PRESETS=corrected", f"RUNS={tmp_path}", *extra], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = dry()
    targets = [f"{tmp_path}/kvasir/tiny/corrected/k{k}/fold{f}.json" for k in (2, 4)
               for f in (0, 1)]
    calls = re.findall(r"-m selfprompt progress --since \\?\s*(\d+) ([^\n]+)", out)
    assert len(calls) == 4 and all(c[1].split() == targets for c in calls)
    # each right after its fold's notebook is in place
    blocks = out.split("05_evaluate.ipynb")[1:]
    assert all("selfprompt progress" in b for b in blocks)
    assert "selfprompt progress" not in dry("QUIET=1")
    assert "05_evaluate.ipynb" in dry("QUIET=1")
