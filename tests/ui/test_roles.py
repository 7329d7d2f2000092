"""Roles enforced in the dashboard's server-side callbacks: a signed-in viewer, grader and operator call the
grade, launch, cancel and fork callbacks directly (as Panel would on a button click) and each is refused or
recorded under their own name; plus the users file, ``lab users add`` and ``lab serve``'s refusal to share
without sign-in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_store import _loader

from lab.auth import Access, AuthError, add_user, check_hash, load_users, remove_user, verify
from lab.traces import TraceStore, schema
from lab.traces.schema import Event
from widgets.dashboard import Dashboard

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def users(tmp_path) -> Path:
    path = tmp_path / "users.json"
    for name, role in (("vera", "viewer"), ("gus", "grader"), ("olga", "operator")):
        add_user(name, role, f"{name}-secret", path)
    return path


@pytest.fixture
def one_run(store) -> str:
    rid = store.create_run({"prompt": "What is 2+2?"}, task="arith/1", agent="react", model="m")
    store.append(Event(rid, *schema.run_finished("done", answer="4")))
    store.finish_run(rid, "done")
    return rid


class Forker:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, store, run_id, step, **kwargs) -> str:
        self.calls.append((run_id, step))
        return store.create_run({}, task="arith/1", agent="react", model="m", parent_run_id=run_id, fork_step=step)


def human_scores(store: TraceStore) -> list[tuple]:
    return store.query("SELECT s.source, json_extract(e.attrs, '$.\"lab.score.details\".by') FROM scores s"
                       " JOIN events e USING (run_id, seq) WHERE s.provenance='human'")


def test_users_file_keeps_only_salted_hashes(users):
    data = json.loads(users.read_text())
    assert all("secret" not in e["password"] for e in data.values())
    assert data["vera"]["password"] != data["gus"]["password"]
    assert users.stat().st_mode & 0o077 == 0
    assert verify("olga", "olga-secret", users) and not verify("olga", "vera-secret", users)
    assert not verify("nobody", "x", users)
    assert not check_hash("olga-secret", "md5$abc")
    with pytest.raises(AuthError, match="not 'guest'"):  # Panel names cookie-less guests 'guest'
        add_user("guest", "operator", "x", users)


def test_viewer_is_refused_grade_launch_cancel_fork(store, one_run, users):
    forker = Forker()
    dash = Dashboard(store, forker=forker, access=Access("vera", users))
    assert dash.tabs == ["Runs", "Trace", "Side by side", "Human vs AI"]
    with pytest.raises(AuthError, match="vera \\(viewer\\) may not launch"):
        dash.launcher.start()
    with pytest.raises(AuthError, match="may not cancel"):
        dash.launcher.cancel()
    dash.grading.runs = [one_run]
    with pytest.raises(AuthError, match="may not grade"):
        dash.grading.grade({"overall": 5})
    dash.grading._submit({"overall": 5}, dash.grading.current)  # the button's callback
    assert "may not grade" in dash.grading.message
    dash.trace.run_id = one_run
    dash.trace._do_fork()  # the fork button's callback
    assert "may not fork" in dash.trace.fork_message and not forker.calls
    assert human_scores(store) == [] and store.list_runs() == [store.get_run(one_run)]


def test_grader_grades_as_themselves_only(store, one_run, users):
    dash = Dashboard(store, forker=Forker(), access=Access("gus", users))
    assert dash.tabs == ["Grade"] and dash.tab == "Grade"
    dash.grading.runs = [one_run]
    dash.grading.grader = "mallory"  # a forged grader id (the box is disabled; the server ignores it)
    dash.grading.grade({"overall": 4})
    assert human_scores(store) == [("gus", "gus")]
    with pytest.raises(AuthError):
        dash.launcher.start()
    dash.trace.run_id = one_run
    dash.trace._do_fork()
    assert "gus (grader) may not fork" in dash.trace.fork_message


def test_operator_forks_and_launches_under_their_name(store, one_run, users):
    forker = Forker()
    dash = Dashboard(store, forker=forker, access=Access("olga", users))
    assert "Launch" in dash.tabs and "Grade" not in dash.tabs
    dash.trace.run_id = one_run
    dash.trace._do_fork()
    child = dash.trace.forked_run
    assert forker.calls == [(one_run, 0)] and child
    audit = [e.attrs for e in store.events(child, kinds=["human_action"])]
    assert audit == [{"lab.audit": "fork", "lab.by": "olga", "lab.parent": one_run, "lab.step": 0}]
    with pytest.raises(AuthError, match="may not grade"):
        dash.grading.grade({"overall": 1})

    dash.launcher.model_loader = _loader
    dash.launcher.config.param.update(experiment="roles", loop="dera", models=["scripted-dera"], seeds=1,
                                      max_steps=3, task_scoring=False)
    dash.launcher.config.load_choices()
    dash.launcher.config.suite = "medqa-open"
    batch = dash.launcher.start(wait=True)
    runs = store.list_runs(batch_id=batch)
    assert runs and dash.launcher.status.startswith("finished")
    for run in runs:
        by = [e.attrs.get("lab.by") for e in store.events(run["run_id"], kinds=["human_action"])]
        assert by == ["olga"], run["run_id"]


def test_removed_user_and_unknown_name_can_do_nothing(store, users):
    olga = Access("olga", users)
    assert olga.can("launch")
    remove_user("olga", users)
    assert not olga.can("launch") and not olga.can("read")  # an open session loses its rights at once
    with pytest.raises(AuthError, match="no user 'olga'"):
        remove_user("olga", users)
    assert not Access("someone", users).can("read")
    assert Dashboard(store, access=Access("someone", users)).tabs == []
    assert not Access(None, users).can("read")
    assert Access().can("launch")  # one person's local dashboard: no sign-in


def _lab(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=120)


def test_users_add_reads_the_password_from_stdin_and_serve_refuses_to_share_without_users(tmp_path):
    path = tmp_path / "users.json"
    out = _lab("users", "add", "ada", "--role", "grader", "--users", str(path), stdin="pa ss\n")
    assert out.returncode == 0, out.stderr
    assert load_users(path)["ada"]["role"] == "grader" and verify("ada", "pa ss", path)
    assert _lab("users", "list", "--users", str(path)).stdout == "ada\tgrader\n"
    bad = _lab("users", "add", "bob", "--role", "admin", "--users", str(path), stdin="x\n")
    assert bad.returncode != 0 and "admin" in bad.stderr and "Traceback" not in bad.stderr

    empty = tmp_path / "nobody.json"
    out = _lab("serve", "--address", "0.0.0.0", "--port", "0", "--users", str(empty))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "without sign-in" in out.stderr
    out = _lab("serve", "--address", "0.0.0.0", "--port", "0", "--no-sign-in", "--users", str(path))
    assert out.returncode != 0 and "without sign-in" in out.stderr


def test_serve_command_signs_in_with_the_auth_module_or_oauth():
    from lab.cli.serve import is_loopback, panel_command

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("lab.example.org")
    cmd = panel_command("dashboard", port=5006, address="0.0.0.0", show=False, sign_in=True)
    assert cmd[cmd.index("--auth-module") + 1].endswith("widgets/auth_module.py")
    cmd = panel_command("dashboard", port=5006, address="0.0.0.0", show=False, sign_in=True, oauth_provider="github")
    assert "--auth-module" not in cmd and cmd[cmd.index("--oauth-provider") + 1] == "github"
    assert "--auth-module" not in panel_command("dashboard", port=5006, address="127.0.0.1", show=False)
    cmd = panel_command("dashboard", port=5006, address="127.0.0.1", show=False, sign_in=True,
                        public_origin="lab.example.org")
    assert "lab.example.org" in cmd and "--use-xheaders" in cmd
