"""medqa-open: the bundled DERA data is the published data, loads as tasks, and scores by alias match."""

from __future__ import annotations

import hashlib
import json

import pytest

from lab.tasks import (
    BUNDLED,
    ScorerRef,
    TaskSpecError,
    answer_aliases,
    load_medqa_open,
    load_suite,
    load_tasks,
    score_task,
)

SUITE = BUNDLED / "medqa-open"


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_bundled_data_and_notices_match_shared_data(shared_data):
    for name in ("medqa_open_dev.jsonl", "medqa_open_test.jsonl", "LICENSE.txt", "LICENSE_MEDQA.txt"):
        assert _sha(SUITE / name) == _sha(shared_data / "dera" / name), name
    assert "Curai Health" in (SUITE / "LICENSE.txt").read_text()
    assert "Di Jin" in (SUITE / "LICENSE_MEDQA.txt").read_text()


def test_suite_loads_every_question():
    tasks = load_suite("medqa-open")
    dev = [t for t in tasks if t.id.startswith("dev-")]
    assert len(dev) == 1272 and len(tasks) == 1272 + 1273       # SOURCE.yaml: 1272 and 1273 lines
    t = dev[0]
    rec = json.loads((SUITE / "medqa_open_dev.jsonl").read_text().splitlines()[0])
    assert t.key == "medqa-open/dev-0001" and t.answer == rec["answer"] == "Ceftriaxone"
    assert rec["question_open"] in t.instructions
    for opt in set(rec["options"].values()) - {rec["answer"]}:   # the options are never shown
        assert opt not in t.instructions
    assert t.metadata["answer_idx"] == rec["answer_idx"] and t.metadata["meta_info"] == "step1"
    assert [x.id for x in load_suite("medqa-open", subset="ci")] == ["dev-0001", "dev-0002", "test-0001"]


def test_aliases():
    assert answer_aliases("Tetralogy of Fallot (TOF)") == ["Tetralogy of Fallot (TOF)", "Tetralogy of Fallot", "TOF"]
    assert answer_aliases("Alpha-fetoprotein (AFP)") == ["Alpha-fetoprotein (AFP)", "Alpha-fetoprotein"]
    assert answer_aliases("t(9;22)") == ["t(9;22)"]
    assert answer_aliases("105 / (105 + 45)") == ["105 / (105 + 45)"]


def test_alias_match_then_fallback_scorer():
    (t,) = load_suite("medqa-open", subset="ci")[:1]
    assert t.scoring.fallback.scorer == "llm_judge" and t.scoring.fallback.args["model"] == "smollm2"
    assert [s.value for s in score_task(t, "  ceftriaxone. ")] == [1.0]          # matched: no judge needed
    t = t.model_copy(update={"scoring": t.scoring.model_copy(update={"fallback": None})})
    assert [s.value for s in score_task(t, "penicillin")] == [0.0]               # no fallback configured
    judged = t.model_copy(update={"scoring": t.scoring.model_copy(update={
        "fallback": ScorerRef(scorer="regex", args={"pattern": "ceftriaxone", "ignore_case": True})})})
    scores = score_task(judged, "I would give IV Ceftriaxone 1 g")
    assert [(s.scorer, s.value) for s in scores] == [("normalized_match", 0.0), ("regex", 1.0)]
    assert len(score_task(judged, "ceftriaxone")) == 1                          # the fallback only when needed


def test_bad_lines_name_file_and_line(tmp_path):
    p = tmp_path / "medqa_open_dev.jsonl"
    good = {"question_open": "q?", "answer": "a", "options": {}, "answer_idx": "A", "meta_info": "step1"}
    p.write_text(json.dumps(good) + "\n" + json.dumps({**good, "answer": ""}) + "\n")
    with pytest.raises(TaskSpecError, match=r"medqa_open_dev.jsonl:2: .*non-empty"):
        load_medqa_open(p)
    p.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(TaskSpecError, match=r":2: not JSON"):
        load_tasks(p)
    p.write_text(json.dumps({k: v for k, v in good.items() if k != "meta_info"}) + "\n")
    with pytest.raises(TaskSpecError, match=r":1: missing field\(s\) \['meta_info'\]"):
        load_medqa_open(p)


@pytest.mark.slow  # loads and runs the embedded model on the CPU (about 2 minutes on a busy 2-core machine)
def test_llm_judge_second_with_model_provenance():
    """The suite's judge (the embedded SmolLM2) grades an answer the alias match rejects."""
    pytest.importorskip("transformers")
    from lab.models import ModelError

    (t,) = load_suite("medqa-open", subset="ci")[:1]
    try:
        scores = score_task(t, "a third-generation cephalosporin (ceftriaxone IM)")
    except ModelError as e:
        pytest.skip(f"embedded model unavailable: {e}")
    rule, judge = scores
    assert (rule.scorer, rule.value, rule.provenance) == ("normalized_match", 0.0, "rule")
    assert judge.provenance == "model" and judge.source and "smollm2" in judge.source
    assert judge.value in (0.0, 1.0) and judge.label in ("pass", "fail")
