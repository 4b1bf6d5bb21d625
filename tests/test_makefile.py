"""The Makefile's data-set variables: registry names, per-set folders and declared layouts
reach every step of `make reproduce` (checked with `make -n`: nothing runs)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from selfprompt.datasets import catalog

REPO = Path(__file__).resolve().parents[1]
MAKEFILE = (REPO / "Makefile").read_text()


def _variable(name):
    return re.search(rf"^{name}\s*:=\s*(.*)$", MAKEFILE, re.M).group(1).split()


def test_makefile_knows_the_registry():
    assert _variable("CATALOG") == list(catalog.CATALOG)
    assert _variable("DOWNLOADS") == [n for n, e in catalog.CATALOG.items() if e.download]
    for name, entry in catalog.CATALOG.items():
        assert re.search(rf"^DATA_DIR_{name}\s*:=\s*data/{entry.folder}$", MAKEFILE, re.M)
    from selfprompt.cli.method import DATASET_NAMES

    assert DATASET_NAMES == list(catalog.CATALOG)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_reproduce_passes_each_data_set_its_folder_and_layout(tmp_path):
    proc = subprocess.run(
        ["make", "-n", "reproduce", "MODEL=tiny", "K=2", "FOLDS=0", "PRESETS=paper",
         "DATASETS=kvasir ph2 mine", "DATA_DIR_ph2=/x/PH2Dataset", "DATA_DIR_mine=/y/mine",
         "IMAGES_mine=img/*.png", "MASKS_mine=Ground Truth", "PAIR_mine=(?P<key>\\d+)",
         f"RUNS={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "fetch data --dataset kvasir" in out                  # a download, default folder
    assert "fetch data --dataset ph2" not in out                 # a folder of the user's
    assert "preflight --model tiny --dataset ph2 \\\n\t--data-dir '/x/PH2Dataset'" in out
    assert "embed '/x/PH2Dataset'  --backbone tiny" in out        # detected: nothing declared
    assert ("embed '/y/mine'  --images 'img/*.png' --masks 'Ground Truth' "
            "--pair '(?P<key>\\d+)' --backbone tiny") in out
    assert ("SELFPROMPT_IMAGES='img/*.png' SELFPROMPT_MASKS='Ground Truth' "
            "SELFPROMPT_PAIR='(?P<key>\\d+)'") in out
    assert "-p data_root /y/mine -p dataset mine" in out
    assert "-p data_root /x/PH2Dataset -p dataset ph2" in out


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_jobs_run_folds_side_by_side_with_a_share_of_the_cores_each(tmp_path):
    """JOBS=n: the folds under make -j n, each fold with cores / n threads (at least 1);
    the embedding before them keeps every core; JOBS=1 (default) sets nothing."""
    def dry(*extra):
        proc = subprocess.run(["make", "-n", "reproduce", "MODEL=tiny", "K=2", "FOLDS=0 1",
                               "PRESETS=paper", f"RUNS={tmp_path}", "NPROC=8", *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    out = dry("JOBS=4")
    assert "-j4 folds" in out
    folds = [line for line in out.splitlines() if "05_evaluate.ipynb" in line]
    assert len(folds) == 2 and all("OMP_NUM_THREADS=2 " in line for line in folds)
    embed = [line for line in out.splitlines() if "selfprompt embed" in line]
    assert embed and not any("OMP_NUM_THREADS" in line for line in embed)
    assert "OMP_NUM_THREADS=1 " in dry("JOBS=16")               # never 0 threads
    out = dry()
    assert "OMP_NUM_THREADS" not in out and " -j" not in out


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_paper_folds_run_in_order_and_only_those_asked_for(tmp_path):
    """The paper preset's fold f replays the draws of folds < f (recomputing them when
    their JSON is missing): a k's paper folds are chained in FOLDS order, so that under
    JOBS none is recomputed; the corrected preset's folds stay free, and a fold that was
    not asked for is never pulled in."""
    def dry(target, folds):
        proc = subprocess.run(["make", "-n", target, "MODEL=tiny", "K=2", f"FOLDS={folds}",
                               "PRESETS=paper corrected", f"RUNS={tmp_path}"],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Circular" not in proc.stderr  # no fold is chained to itself
        return re.findall(r"-p preset (\w+)[\s\\]*-p k 2 -p fold (\d)", proc.stdout)

    run = f"{tmp_path}/kvasir/tiny"
    assert dry(f"{run}/paper/k2/fold3.json", "1 3") == [("paper", "1"), ("paper", "3")]
    assert dry(f"{run}/corrected/k2/fold3.json", "1 3") == [("corrected", "3")]
    assert dry(f"{run}/paper/k2/fold3.json", "3") == [("paper", "3")]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_chosen_shots_keep_their_folds_in_a_subfolder_and_say_so_to_the_notebook(tmp_path):
    """SHOTS=medoids: each fold's target is where the run folder keeps chosen shots
    (k2/medoids/fold1.json), notebook 05 is told the strategy, the paper folds are
    chained within the strategy; the default is the paper's random draw, no subfolder."""
    def dry(*extra):
        proc = subprocess.run(["make", "-n", "folds", "MODEL=tiny", "K=2", "FOLDS=0 1",
                               "PRESETS=paper", f"RUNS={tmp_path}", *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Circular" not in proc.stderr
        return proc.stdout

    run = f"{tmp_path}/kvasir/tiny/paper/k2"
    chosen = dry("SHOTS=medoids")
    assert re.findall(r"-p fold (\d) -p shots (\w+)", chosen) == [("0", "medoids"),
                                                                  ("1", "medoids")]
    assert f"test -f {run}/medoids/fold1.json" in chosen
    assert "05_evaluate_paper_k2_medoids_fold1.ipynb" in chosen
    drawn = dry()
    assert re.findall(r"-p fold (\d) -p shots (\w+)", drawn) == [("0", "random"),
                                                                 ("1", "random")]
    assert f"test -f {run}/fold1.json" in drawn
    assert "05_evaluate_paper_k2_fold1.ipynb" in drawn
    # a finished random fold 0 is no reason to skip the chosen shots' fold 0
    (tmp_path / "kvasir/tiny/paper/k2").mkdir(parents=True)
    (tmp_path / "kvasir/tiny/paper/k2/fold0.json").write_text("{}")
    assert "-p fold 0 -p shots medoids" in dry("SHOTS=medoids")
    assert "-p fold 0 -p shots random" not in dry()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_the_k_all_folds_start_first_and_every_fold_runs_once(tmp_path):
    """k = all folds fit on every shot (the longest folds by far): started first, so that
    under JOBS the short ones fill the cores at the end."""
    proc = subprocess.run(["make", "-n", "folds", "MODEL=tiny", "K=10 all", "FOLDS=0 1",
                           "PRESETS=paper corrected", f"RUNS={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    order = re.findall(r"-p preset (\w+)[\s\\]*-p k (\w+) -p fold (\d)", proc.stdout)
    assert [k for _, k, _ in order] == ["all"] * 4 + ["10"] * 4
    assert sorted(order) == sorted((p, k, f) for p in ("paper", "corrected")
                                   for k in ("10", "all") for f in "01")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_ablations_run_on_the_named_data_set_and_write_beside_their_runs():
    proc = subprocess.run(
        ["make", "-n", "ablations", "DATASET=mine", "DATA_DIR_mine=/y/mine",
         "MASKS_mine=gt", "ABLATION_STUDIES=baselines shots", "ABLATION_TEST="],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.replace("\\\n\t", "")
    assert "-m selfprompt ablations run /y/mine" in out and "--masks 'gt'" in out
    assert "--studies baselines shots" in out and "--test-per-fold" not in out
    assert "--out reports/ablations/runs/mine/medsam_lite" in out
    assert ("ablations write reports/ablations/runs/mine/medsam_lite "
            "reports/ablations/mine/medsam_lite") in out
    assert "--seeds" not in out            # each study's own seeds unless SEEDS is given


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize("target", ["ablations", "reference-ablations", "reference-beyond"])
def test_seeds_reach_every_ablations_run(target):
    proc = subprocess.run(["make", "-n", target, "SEEDS=42 43 44"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    runs = [line for line in proc.stdout.replace("\\\n\t", "").splitlines()
            if "ablations run" in line]
    assert runs and all("--seed 42 --seeds 42 43 44" in line for line in runs)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_book_runs_the_notebooks_or_renders_the_copies_it_is_given():
    def dry(*args):
        proc = subprocess.run(["make", "-n", "book", *args], cwd=REPO, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "-m selfprompt book --out reports/book \n" in dry()
    assert ("-m selfprompt book --out /tmp/b --executed reports/executed"
            in dry("BOOK_OUT=/tmp/b", "BOOK_EXECUTED=reports/executed"))
    check = subprocess.run(["make", "-n", "classroom-check"], cwd=REPO, capture_output=True,
                           text=True, timeout=60).stdout
    assert "--keep reports/executed" in check                  # what BOOK_EXECUTED= reuses


def test_bundle_passes_its_data_platform_and_python():
    proc = subprocess.run(
        ["make", "-n", "bundle", "BUNDLE=/x/bundle", "BUNDLE_DATA=/d/kvasir-seg",
         "BUNDLE_PLATFORM=manylinux2014_x86_64", "BUNDLE_PYTHON=3.10"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.replace("\\\n\t", " ").split())
    assert ("-m selfprompt bundle build --out '/x/bundle' --data '/d/kvasir-seg' "
            "--platform manylinux2014_x86_64 --python-version 3.10") in out


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_install_offline_builds_the_environment_from_the_bundle_never_the_index(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    proc = subprocess.run(["make", "-n", "install-offline", f"BUNDLE={tmp_path}",
                           "VENV=/nonexistent/venv", "CHECK_NOTEBOOKS=01_data"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.replace("\\\n\t", " ").splitlines()
    # no `make venv` first (it installs from the index): .venv comes from the bundle
    assert not any("requirements-lock.txt" in x or "pip install" in x for x in lines)
    install = next(i for i, x in enumerate(lines)
                   if f"-m selfprompt bundle install '{tmp_path}' --venv /nonexistent/venv"
                   in x)
    touch = lines.index("touch /nonexistent/venv/.installed")
    check = next(i for i, x in enumerate(lines) if "-m selfprompt classroom" in x)
    assert install < touch < check and "--notebooks 01_data" in lines[check]
    assert lines[install].startswith("python3 ")  # the system's Python: no venv yet


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_install_offline_without_a_bundle_says_what_to_give(tmp_path):
    proc = subprocess.run(["make", "install-offline", f"BUNDLE={tmp_path}/none",
                           f"VENV={tmp_path}/venv"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert f"no {tmp_path}/none/manifest.json" in proc.stderr
    assert not (tmp_path / "venv").exists()
