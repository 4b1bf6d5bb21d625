"""Where a number was computed: what `selfprompt.utils.provenance` records."""
import json
import subprocess
import sys

from selfprompt.utils.provenance import ARITHMETIC_VARS, environment, kit_commit


def test_environment_names_code_libraries_cpu_and_arithmetic(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    env = environment()
    for key in ("kit_commit", "torch", "numpy", "scikit_learn", "opencv", "cpu", "cores",
                "torch_threads", "torch_cpu_capability", "blas"):
        assert env[key] not in (None, ""), key
    assert env["env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert set(env["env"]) <= set(ARITHMETIC_VARS)
    json.dumps(env)  # recorded in every fold's JSON


def test_kit_commit_is_a_git_hash():
    commit = kit_commit()
    assert commit == "unknown" or len(commit.split("+")[0]) == 40


def test_command_line_prints_json():
    run = subprocess.run([sys.executable, "-m", "selfprompt", "provenance"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and json.loads(run.stdout)["cpu"]
