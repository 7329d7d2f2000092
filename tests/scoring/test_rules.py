"""Rule scorers and the scorer registry."""

from __future__ import annotations

import math

import pytest

from lab.sandbox.base import SandboxUnavailable
from lab.scoring import (
    Scorer,
    ScoringError,
    ScriptScorer,
    as_scores,
    get_scorer,
    json_match,
    normalized_score,
    scorer_names,
    super_json_match,
)
from lab.traces import Score


def test_registry_builds_every_rule_scorer_by_name():
    names = scorer_names()
    for n in ["exact_match", "normalized_match", "regex", "numeric", "json_match", "landmarks",
              "normalized_score", "script"]:
        assert n in names
    s = get_scorer("numeric", abs_tol=0.5)
    assert isinstance(s, Scorer)
    assert s("41.7", 42).value == 1.0


def test_registry_errors_name_the_problem():
    with pytest.raises(ScoringError, match="unknown scorer 'nope'"):
        get_scorer("nope")
    with pytest.raises(ScoringError, match="bad arguments"):
        get_scorer("numeric", tolerance=3)


def test_exact_and_normalized_match():
    assert get_scorer("exact_match")(" Paris\n", "Paris").value == 1.0
    assert get_scorer("exact_match")("paris", "Paris").value == 0.0
    assert get_scorer("exact_match")("Lyon", ["Paris", "Lyon"]).value == 1.0
    nm = get_scorer("normalized_match")
    assert nm("The  Eiffel tower!", "eiffel Tower").value == 1.0
    assert nm("Eiffel", "eiffel tower").value == 0.0
    s = nm("x", "x", item_id="q7")
    assert (s.provenance, s.source, s.item_id, s.label) == ("rule", "normalized_match", "q7", "pass")


def test_regex():
    assert get_scorer("regex", pattern=r"acc(uracy)?\s*=\s*0\.9\d")("final accuracy = 0.93").value == 1.0
    assert get_scorer("regex")("abc", r"^b").value == 0.0
    assert get_scorer("regex", fullmatch=True, ignore_case=True)(" YES ", "yes").value == 1.0
    with pytest.raises(ScoringError, match="bad pattern"):
        get_scorer("regex", pattern="(")


@pytest.mark.parametrize("out,target,abs_tol,rel_tol,want", [
    ("0.1234", 0.12, 0.01, 0.0, 1.0),
    ("0.1234", 0.12, 0.001, 0.0, 0.0),
    ("the answer is 1,050.", 1000, 0.0, 0.05, 1.0),
    ("the answer is 1,060.", 1000, 0.0, 0.05, 0.0),
    ("no number", 3, 1.0, 0.0, 0.0),
    (7, "7", 0.0, 1e-9, 1.0),
])
def test_numeric_tolerance(out, target, abs_tol, rel_tol, want):
    s = get_scorer("numeric", abs_tol=abs_tol, rel_tol=rel_tol)(out, target)
    assert s.value == want
    parsed = s.details.get("parsed")
    if parsed is not None:
        assert math.isclose(parsed, float(str(out).replace(",", "").rstrip(".").split()[-1]))


def test_numeric_bad_target_and_tolerance():
    with pytest.raises(ScoringError, match="not a number"):
        get_scorer("numeric")("1", "abc")
    with pytest.raises(ScoringError, match="tolerances"):
        get_scorer("numeric", abs_tol=-1)


def test_json_match_super_semantics():
    gold = {"accuracy": 0.8123, "f1": 71, "split": "dev", "per_class": [0.5, 0.25]}
    assert json_match({"accuracy": 0.8199, "f1": 71.004, "split": " dev", "per_class": [0.5, 0.25]}, gold) == 1.0
    # floats: strictly within 1e-2
    assert json_match({"accuracy": 0.8223}, {"accuracy": 0.8123}) == 0.0
    # half the gold keys right; a missing key scores 0; an extra key is ignored
    assert json_match({"accuracy": 0.81, "f1": 50, "extra": 1}, {"accuracy": 0.81, "f1": 71}) == 0.5
    # nested dicts and lists average recursively
    assert json_match({"a": {"x": 1, "y": 0}, "b": [1, 9]}, {"a": {"x": 1, "y": 2}, "b": [1, 2]}) == 0.5
    assert json_match("0.5", 0.5) == 0.0  # type mismatch
    with pytest.raises(ScoringError, match="empty object"):
        json_match({}, {})


def test_super_compat_mode_reproduces_the_swap():
    gold = {"a": 1.0, "b": 2.0}
    # SUPER iterates the prediction's keys at the top level: omissions go unpunished, extras cost
    assert super_json_match({"a": 1.0}, gold) == 1.0
    assert json_match({"a": 1.0}, gold) == 0.5
    assert super_json_match({"a": 1.0, "b": 2.0, "c": 3.0}, gold) == pytest.approx(2 / 3)
    assert json_match({"a": 1.0, "b": 2.0, "c": 3.0}, gold) == 1.0
    # one level down the roles swap back: gold's keys are iterated
    assert super_json_match({"m": {"x": 1.0}}, {"m": {"x": 1.0, "y": 2.0}}) == 0.5
    scorer = get_scorer("json_match", super_compat=True)
    assert scorer('{"a": 1}', gold).value == 1.0
    assert get_scorer("json_match")('{"a": 1}', gold).value == 0.5


def test_json_match_scorer_parses_strings():
    sc = get_scorer("json_match")
    assert sc('{"loss": 0.301}', '{"loss": 0.3}').value == 1.0
    bad = sc("Loss is 0.3", {"loss": 0.3})
    assert bad.value == 0.0 and "not JSON" in bad.details["reason"]
    with pytest.raises(ScoringError, match="gold answer is not JSON"):
        sc("{}", "{oops")


def test_landmarks_fraction():
    steps = ["Installing deps\nSuccessfully installed torch", "Epoch 1/3\nloss 0.4", "Traceback ..."]
    s = get_scorer("landmarks")(steps, [r"Successfully installed \w+", r"Epoch 1/3 loss", r"Training completed"])
    assert s.value == pytest.approx(2 / 3)
    assert s.details["missed"] == ["Training completed"]
    assert get_scorer("landmarks", patterns=["loss"])("all done, loss 0.1").value == 1.0
    with pytest.raises(ScoringError, match="non-empty list"):
        get_scorer("landmarks")("x", [])


def test_normalized_score_higher_and_lower_is_better():
    assert normalized_score(0.8, 0.5, 0.9) == pytest.approx(0.75)
    # lower is better (a loss): start 4.0, reference 2.0, agent 3.0 -> halfway
    assert normalized_score(3.0, 4.0, 2.0) == pytest.approx(0.5)
    assert normalized_score(1.5, 4.0, 2.0) == pytest.approx(1.25)  # beats the reference
    assert normalized_score(40, 100, 10, log=True) == pytest.approx(math.log(2.5) / math.log(10))
    with pytest.raises(ScoringError, match="equal"):
        normalized_score(1, 2, 2)
    sc = get_scorer("normalized_score", start=4.0, reference=2.0)
    s = sc("final loss: 3.0")
    assert s.value == pytest.approx(0.5) and s.details["raw"] == 3.0
    assert sc("3.0", {"start": 5.0, "reference": 1.0}).value == pytest.approx(0.5)
    assert sc("diverged").value is None


@pytest.fixture
def sandbox():
    """A real local (bubblewrap) sandbox."""
    from lab.sandbox import SandboxSpec, open_sandbox

    try:
        sb = open_sandbox(SandboxSpec(backend="local"))
    except SandboxUnavailable as e:
        pytest.skip(f"local sandbox unavailable: {e}")
    with sb:
        yield sb


def test_script_scorer_reads_json_number_and_exit_code(sandbox):
    sb = sandbox
    s = ScriptScorer('echo warming up; echo \'{"score": 0.75, "loss": 2.1}\'')("", sandbox=sb, item_id="t1")
    assert s.value == 0.75 and s.details["loss"] == 2.1 and s.item_id == "t1"
    assert ScriptScorer("wc -c")("abcd", sandbox=sb).value == 4.0
    assert ScriptScorer("grep -q yes", parse="exit_code")("no", sandbox=sb).value == 0.0
    failed = ScriptScorer("echo boom >&2; exit 3")("", sandbox=sb)
    assert failed.value is None and "boom" in failed.details["stderr"]
    assert ScriptScorer("echo done")("", sandbox=sb).details["reason"].startswith("last line is not JSON")
    assert ScriptScorer("sleep 5", timeout=0.2)("", sandbox=sb).details["reason"].startswith("timed out")
    with pytest.raises(ScoringError, match="needs sandbox"):
        ScriptScorer("true")("")


def test_as_scores():
    s = Score("x", 1.0)
    assert as_scores(s) == [s] and as_scores([s, s]) == [s, s]


def test_entrypoint_counts_a_clean_run_of_the_script():
    ep = get_scorer("entrypoint")
    ok = {"command": "sh -c 'cd /work/tinyclf && python train.py --alpha 0.5'", "exit_code": 0, "duration": 1.2,
          "output": "accuracy 0.975"}
    crashed = {**ok, "exit_code": 1, "output": "Traceback (most recent call last):\n  ValueError"}
    long_stopped = {**ok, "exit_code": -1, "duration": 12.0, "output": "epoch 1 ..."}
    other = {**ok, "command": "python pretrain.py"}                       # a different script, same suffix
    assert ep([ok], "train.py").value == 1.0
    assert ep([crashed], "train.py").value == 0.0
    assert ep([long_stopped], "scripts/train.py").value == 1.0           # ran 10 s without a traceback
    assert ep([{**long_stopped, "duration": 3.0}], "train.py").value == 0.0
    assert ep([other], "train.py").value == 0.0
    assert ep([], "train.py").value == 0.0
    with pytest.raises(ScoringError, match="entrypoint"):
        ep([ok], None)
