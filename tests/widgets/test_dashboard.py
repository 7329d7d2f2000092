"""The linked dashboard, the run launcher's saved configuration, and `lab serve`'s arguments."""

from __future__ import annotations

import json
import subprocess
import sys

import panel as pn
import pytest

from lab.cli.serve import ServeError, app_path, panel_command
from lab.errors import LabError
from widgets import Dashboard, RunConfig


def test_selection_drives_trace_diff_and_grading(study):
    store, ids = study
    d = Dashboard(store, grader="zoe")
    view = d.panel()
    assert not d.compare.loaded  # read when its tab is first shown
    assert sorted(d.grading.runs) == sorted(ids)  # nothing selected: the filtered runs
    d.runs.table.selection = [0, 1]
    a, b = d.runs.selected
    assert d.trace.run_id == b and (d.diff.run_a, d.diff.run_b) == (a, b)
    assert d.grading.runs == [a, b] and set(d.grading.dimensions) == {"correctness", "clarity"}
    d.tab = "Human vs AI"
    assert d.compare.loaded
    d.compare.open_run = a
    assert d.trace.run_id == a and d.tab == "Trace"
    before = d.compare.version
    d.grading.grade({"correctness": 3, "clarity": 3})
    assert d.compare.version == before + 1  # new grades refresh the comparisons
    assert isinstance(view, pn.Column)


def test_empty_store_renders(store):
    view = Dashboard(store).panel()
    text = "\n".join(a.object for a in view.select(pn.pane.Alert))
    assert "has no runs yet" in text


def test_run_config_round_trip(tmp_path):
    cfg = RunConfig(loop="react", models=["smollm2", "scripted"], seeds=3, max_tokens=32)
    path = cfg.save(tmp_path / "launch.json")
    again = RunConfig.load(path)
    assert again.to_dict() == cfg.to_dict() and json.loads(path.read_text())["seeds"] == 3
    (tmp_path / "bad.json").write_text("{\"seeds\": \"many\"}")
    with pytest.raises(Exception, match="not a saved run configuration"):
        RunConfig.load(tmp_path / "bad.json")


def test_serve_targets(tmp_path):
    assert app_path("dashboard").name == "app.py"
    nb = tmp_path / "x.ipynb"
    nb.write_text("{}")
    cmd = panel_command(str(nb), port=5123, address="127.0.0.1", show=False)
    assert cmd[1:4] == ["-m", "panel", "serve"] and str(nb) in cmd and "127.0.0.1:5123" in cmd
    with pytest.raises(ServeError, match="nothing to serve"):
        app_path(str(tmp_path / "missing.ipynb"))
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ServeError, match="not .txt"):
        app_path(str(tmp_path / "notes.txt"))
    out = subprocess.run([sys.executable, "-m", "lab.cli.main", "serve", str(tmp_path / "notes.txt")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not .txt" in out.stderr and "Traceback" not in out.stderr


def test_launcher_runs_a_batch_and_resumes(store, tmp_path):
    from widgets import RunLauncher

    reply = {"answer": "ceftriaxone", "explanation": "x", "message": "ok", "done": True, "final": True}
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"replies": [json.dumps(reply)], "cycle": True}))
    cfg = RunConfig(experiment="t", loop="dera", models=[f"scripted:{script}"], max_steps=2,
                    task_scoring=False)
    cfg.load_choices()
    cfg.suite = "medqa-open"
    cfg.tasks = cfg.param.tasks.objects[:2]
    launcher = RunLauncher(store, cfg)
    assert launcher.start(wait=True) == "exp:t"
    progress = launcher.progress()
    assert len(progress) == 2 == launcher.total and set(progress["status"]) == {"done"}
    assert launcher.status.startswith("finished: 2 done")
    launcher.resume(wait=True)  # nothing left to do: done combinations are kept, not rerun
    assert len(launcher.progress()) == 2 and launcher.status.startswith("finished: 0 done")


def test_launcher_cancel_pauses_the_batch_and_resume_finishes_it(store):
    import threading

    from lab.models import ScriptedModel
    from widgets import RunLauncher

    started, release = threading.Event(), threading.Event()

    def reply(messages):
        if messages[0].content.startswith("You are the Researcher"):
            started.set()
            release.wait(30)                          # a slow researcher: cancel arrives mid-step
            return {"json": {"message": "check the findings", "done": False}}
        revisions.append(1)                           # the decider: a draft, then final from its second revision
        if len(revisions) == 1:
            return {"json": {"answer": "ceftriaxone", "explanation": "x"}}
        return {"json": {"answer": "ceftriaxone", "message": "ok", "final": len(revisions) > 2}}

    revisions: list[int] = []
    cfg = RunConfig(experiment="c", loop="dera", models=["slow"], max_steps=2, task_scoring=False)
    cfg.load_choices()
    cfg.suite = "medqa-open"
    cfg.tasks = cfg.param.tasks.objects[:1]
    launcher = RunLauncher(store, cfg, model_loader=lambda name: ScriptedModel(reply, name=name))
    with pytest.raises(LabError, match="no batch is running"):
        launcher.cancel()
    launcher.start()
    assert started.wait(30)
    launcher.cancel()
    release.set()
    launcher._thread.join(30)
    assert list(launcher.progress()["status"]) == ["interrupted"]
    launcher.resume(wait=True)
    assert list(launcher.progress()["status"]) == ["done"]
