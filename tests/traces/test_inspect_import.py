"""Inspect AI logs in: a real ``inspect eval`` (mockllm, local sandbox) and a human_agent-style log become
runs — one per sample and epoch — with their model calls, tool calls, sandbox execs, scores and working
times, read by the human-vs-AI dashboard's data layer; bad files are one line and import nothing."""

from __future__ import annotations

import zipfile

import pytest

pytest.importorskip("inspect_ai", reason="needs the inspect extra: pip install 'expertlab[inspect]'")

from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.scorer import value_to_float  # noqa: E402
from inspect_logs import HUMAN_LOG, human_log, inspect_eval  # noqa: E402

from lab.traces.errors import StoreError, TraceImportError  # noqa: E402
from lab.traces.importers.inspect import import_inspect  # noqa: E402


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    agent = inspect_eval(d / "eval")                              # 3 samples x 2 epochs, .eval
    agent_json = inspect_eval(d / "json", log_format="json", epochs=1)
    human = human_log(agent_json, d / "human.eval")
    return {"agent": agent, "json": agent_json, "human": human}


def _events(store, run_id, kind):
    return store.events(run_id, kinds=[kind])


def test_one_run_per_sample_and_epoch_with_its_steps(store, logs):
    log = read_eval_log(str(logs["agent"]))
    ids = import_inspect(store, [logs["agent"]])
    assert len(ids) == len(log.samples) == 6
    to_float = value_to_float()
    for s in log.samples:
        rid = f"inspect-{log.eval.eval_id}-{s.id}-e{s.epoch}"
        run = store.get_run(rid)
        assert (run["task"], run["agent"], run["model"], run["is_human"], run["status"]) == (
            f"arith/{s.id}", "inspect:generate", "mockllm/model", False, "done")
        assert run["elapsed"] == pytest.approx(s.working_time)
        assert run["config"]["prompt"] == s.input and run["config"]["target"] == s.target
        calls = _events(store, rid, "model_call")
        model_events = [e for e in s.events if e.event == "model"]
        assert len(calls) == len(model_events) == 2
        for c, e in zip(calls, model_events, strict=True):
            assert c.attrs["gen_ai.usage.input_tokens"] == e.output.usage.input_tokens
            assert c.attrs["gen_ai.usage.output_tokens"] == e.output.usage.output_tokens
            assert c.attrs["gen_ai.request.model"] == "mockllm/model"
        assert calls[0].attrs["gen_ai.output.messages"][0]["tool_calls"][0]["function"]["name"] == "bash"
        (call,), (result,) = _events(store, rid, "tool_call"), _events(store, rid, "tool_result")
        tool = next(e for e in s.events if e.event == "tool")
        assert call.attrs["lab.arguments"] == tool.arguments and result.attrs["content"] == tool.result
        execs = _events(store, rid, "sandbox_exec")
        assert any("echo $((" in " ".join(e.attrs["process.command_args"]) and e.attrs["process.exit.code"] == 0
                   for e in execs)
        (score,) = [sc for sc in store.scores_frame().itertuples() if sc.run_id == rid]
        assert score.value == to_float(s.scores["match"].value) and score.label == s.scores["match"].value
        assert (score.scorer, score.source, score.provenance) == ("match", "inspect:match", "rule")
        fin = _events(store, rid, "run_finished")[0]
        assert fin.attrs["lab.answer"] == s.output.completion
    frame = store.runs_frame()
    assert frame["score.match"].sum() == sum(to_float(s.scores["match"].value) for s in log.samples) == 4


def test_json_logs_and_human_agent_samples(store, logs):
    ids = import_inspect(store, [logs["json"], logs["human"]])
    human = read_eval_log(str(logs["human"]))
    assert len(ids) == 3 + len(human.samples)
    runs = {r["run_id"]: r for r in store.list_runs()}
    for s in human.samples:
        run = runs[f"inspect-{human.eval.eval_id}-{s.id}-e{s.epoch}"]
        assert run["is_human"] and run["agent"] == "human" and run["model"] == f"human:{s.metadata['expert']}"
        assert run["elapsed"] == s.store["HumanAgentState:accumulated_time"]  # the human clock, not wall time
        scores = store.scores_frame().query("run_id == @run['run_id']")
        final = scores[scores["final"]]
        assert list(final["value"]) == [1.0 if s.scores["match"].value == "C" else 0.0]
        assert (~scores["final"]).sum() == 1  # the `task score` check while working
        (session,) = store.events(run["run_id"], kinds=["human_action"])
        assert session.attrs["content"] == s.store["HumanAgentState:logs"]["bash.log"]
    assert {r["model"] for r in runs.values() if r["is_human"]} == {"human:alice", "human:bob"}


def test_dashboard_data_reads_inspect_runs(store, logs):
    from lab.stats import budget_curve
    from widgets.human_vs_ai import HumanVsAIDashboard

    import_inspect(store, [logs["agent"], logs["human"]])
    dash = HumanVsAIDashboard(store, n_boot=50)
    assert dash.scorer == "match"
    curves = dash.budget_curves()
    assert {"human", "inspect:generate/mockllm/model"} <= set(curves["group"])
    runs = store.runs_frame()
    direct = budget_curve(runs, [60.0, 3600.0], score="score.match", time_limit=3600.0, n_boot=50, seed=0)
    ai = direct[(direct["group"] != "human") & (direct["budget"] == 3600.0)]
    assert ai["score"].dropna().between(0, 1).all() and not ai.empty
    top = dash.leaderboard_view()
    assert top is not None


def test_committed_human_log_imports(store):
    ids = import_inspect(store, HUMAN_LOG)
    assert len(ids) == 6 and all(store.get_run(i)["is_human"] for i in ids)


def test_bad_files_are_one_line_and_import_nothing(store, logs, tmp_path, lab):
    bad = tmp_path / "broken.eval"
    bad.write_bytes(logs["agent"].read_bytes()[:500])
    with pytest.raises(TraceImportError, match=r"broken\.eval: not a readable Inspect eval log"):
        import_inspect(store, [logs["agent"], bad])
    assert store.list_runs() == []
    notjson = tmp_path / "notes.json"
    notjson.write_text('{"hello": 1}')
    with pytest.raises(TraceImportError, match=r"notes\.json: not a readable Inspect eval log"):
        import_inspect(store, notjson)
    empty = tmp_path / "empty.eval"
    with zipfile.ZipFile(empty, "w"):
        pass
    res = lab("import", "inspect", str(logs["agent"]), str(empty), "--store", str(store.path))
    assert res.returncode == 2 and "empty.eval" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr and store.list_runs() == []
    res = lab("import", "inspect", str(tmp_path / "missing.eval"), "--store", str(store.path))
    assert res.returncode == 2 and "missing.eval: no such file" in res.stderr
    ok = lab("import", "inspect", str(logs["agent"]), "--store", str(store.path))
    assert ok.returncode == 0 and "imported 6 Inspect runs" in ok.stdout
    with pytest.raises(StoreError, match="already exists"):
        import_inspect(store, [logs["json"], logs["agent"]])  # all or nothing: the json log's runs neither
    assert len(store.list_runs()) == 6


def test_a_sample_that_errored_is_a_failed_run(store, logs, tmp_path):
    from inspect_ai.log import EvalError, write_eval_log

    log = read_eval_log(str(logs["json"]))
    log.eval.eval_id = "errored"
    log.samples[1].error = EvalError(message="RuntimeError: sandbox died", traceback="tb", traceback_ansi="tb")
    write_eval_log(log, str(tmp_path / "errored.eval"))
    import_inspect(store, tmp_path / "errored.eval")
    status = {r["task"]: (r["status"], r["error"]) for r in store.list_runs()}
    assert status[f"arith/{log.samples[1].id}"] == ("failed", "RuntimeError: sandbox died")
    assert sum(s == "done" for s, _ in status.values()) == 2
