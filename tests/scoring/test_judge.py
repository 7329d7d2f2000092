"""LLM judges and panels: scripted models for the logic, the embedded SmolLM2 for one real verdict."""

from __future__ import annotations

import pytest

from lab.models import Sampling, ScriptedModel
from lab.scoring import JudgePanel, LLMJudge, QualificationItem, ScoringError, get_scorer
from lab.traces import RunRecorder


def reply(**fields):
    return {"json": {"explanation": "ok", "confidence": 80, **fields}}


def test_single_score_judge_records_provenance_and_confidence(store):
    model = ScriptedModel([reply(score=4)], name="judge-model")
    judge = LLMJudge(model, criteria="Correct dose.", persona="a clinical pharmacist")
    rec = RunRecorder.start(store, {"task": "q1"})
    [s] = judge("Give 75 mg aspirin.", "aspirin 75 mg daily", question="Dose?", item_id="q1", recorder=rec)
    assert (s.value, s.provenance, s.source, s.item_id) == (4.0, "model", "judge-model", "q1")
    assert s.details["confidence"] == 0.8 and s.details["persona"] == "a clinical pharmacist"
    assert s.details["prompt_id"] == judge.prompt_id()
    sent = model.requests[0]
    assert sent[0].content.startswith("You are a clinical pharmacist.")
    assert "## Reference answer\naspirin 75 mg daily" in sent[1].content and "## Task\nDose?" in sent[1].content
    assert store.events_frame(rec.run_id)["kind"].tolist() == ["run_started", "model_call"]


def test_pass_fail_and_dimension_rubrics():
    pf = LLMJudge(ScriptedModel([reply(verdict="fail")]), scale=None, use_reference=False)
    [s] = pf("answer", "secret reference")
    assert (s.value, s.label) == (0.0, "fail")
    assert pf.response_schema()["properties"]["verdict"]["enum"] == ["pass", "fail"]
    dims = {"accuracy": "facts are right", "style": "clear and concise"}
    dj = LLMJudge(ScriptedModel([reply(scores={"accuracy": 2, "style": 5})]), dimensions=dims, scale=(1, 5))
    out = dj("answer")
    assert {s.dimension: s.value for s in out} == {"accuracy": 2.0, "style": 5.0}
    assert "- style: clear and concise" in dj.messages("x")[1].content
    with pytest.raises(ScoringError, match="scale"):
        LLMJudge(ScriptedModel([]), scale=(5, 1))


def test_unparseable_or_out_of_schema_reply_gives_no_value():
    bad = LLMJudge(ScriptedModel([reply(score=9), reply(score=0), "not json at all", "still not"]))  # one retry each
    [s] = bad("x")
    assert s.value is None and "schema" in s.details["error"]
    [s] = bad("y")
    assert s.value is None and "ModelOutputError" in s.details["error"]


def test_registry_builds_judge_from_a_model_name(tmp_path):
    script = tmp_path / "judge.json"
    script.write_text('[{"json": {"explanation": "fine", "score": 3, "confidence": 50}}]')
    judge = get_scorer("llm_judge", model=f"scripted:{script}", scale=[1, 3])
    assert judge("x")[0].value == 3.0


def test_panel_aggregates_and_qualifies():
    def judge(name, *values):
        return LLMJudge(ScriptedModel([reply(score=v) for v in values], name=name), name="j")

    a, b, c = judge("m1", 5, 4), judge("m2", 3, 4), judge("m3", 3, 2)
    out = JudgePanel([a, b, c])("answer", item_id="q")
    assert out[0].scorer == "panel" and out[0].value == pytest.approx(11 / 3)
    assert out[0].details["votes"] == {"j:m1": 5.0, "j:m2": 3.0, "j:m3": 3.0}
    assert [s.source for s in out[1:]] == ["m1", "m2", "m3"]
    assert JudgePanel([a, b, c], aggregate="majority")("x")[0].value == 4.0  # 4, 4, 2
    w = JudgePanel([judge("m1", 5), judge("m2", 1)], aggregate="weights", weights=[3, 1])
    assert w("x")[0].value == pytest.approx(4.0)
    with pytest.raises(ScoringError, match="one non-negative weight per judge"):
        JudgePanel([a], aggregate="weights", weights=[1, 2])
    # qualification: m1 grades the known item 5 (expected 5), m2 grades it 1 -> only m1 sits
    q = JudgePanel([judge("m1", 5, 4), judge("m2", 1, 2)], qualification=[QualificationItem("known", 5)])
    out = q("x")
    assert q.qualification_results == {"j:m1": 1.0, "j:m2": 0.0}
    assert out[0].value == 4.0 and out[0].source == "panel(j:m1)"
    none = JudgePanel([judge("m2", 1)], qualification=[QualificationItem("known", 5)])
    with pytest.raises(ScoringError, match="no judge reproduced"):
        none("x")


def test_pass_fail_panel_majority_by_label():
    js = [LLMJudge(ScriptedModel([reply(verdict=v)], name=f"m{i}"), scale=None)
          for i, v in enumerate(["pass", "fail", "pass"])]
    top = JudgePanel(js, aggregate="majority")("x")[0]
    assert (top.value, top.label) == (1.0, "pass")


@pytest.mark.timeout(900)
def test_real_smollm2_judge_verdict_parses():
    judge = LLMJudge("smollm2", criteria="The answer names the capital of France.", scale=(1, 5),
                     explanation_chars=80, sampling=Sampling(temperature=0.0, max_tokens=160))
    [s] = judge("The capital of France is Paris.", "Paris", question="What is the capital of France?")
    assert s.value is not None and 1 <= s.value <= 5, s.details
    assert 0.0 <= s.details["confidence"] <= 1.0 and isinstance(s.details["explanation"], str)
    assert s.source == "smollm2"
