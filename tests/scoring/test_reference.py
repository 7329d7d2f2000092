"""Reference metrics against the libraries they wrap, and MiniLM similarity on the shipped model."""

from __future__ import annotations

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from lab.scoring import ScoringError, get_scorer

REF = "The patient should start aspirin and be referred to cardiology."
GOOD = "Start the patient on aspirin and refer them to cardiology."
BAD = "Tomorrow it will rain over the northern hills."


def test_rouge_matches_rouge_score_and_takes_best_reference():
    s = get_scorer("rouge", variant="rouge1")(GOOD, [BAD, REF])
    want = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True).score(REF, GOOD)["rouge1"].fmeasure
    assert s.value == pytest.approx(want) and s.provenance == "rule"
    assert get_scorer("rouge")(BAD, REF).value < s.value
    with pytest.raises(ScoringError, match="variant"):
        get_scorer("rouge", variant="rouge9")


def test_bleu_and_chrf_match_sacrebleu():
    assert get_scorer("bleu")(GOOD, REF).value == pytest.approx(sacrebleu.sentence_bleu(GOOD, [REF]).score / 100)
    assert get_scorer("bleu", metric="chrf")(GOOD, REF).value == pytest.approx(
        sacrebleu.sentence_chrf(GOOD, [REF]).score / 100)
    assert get_scorer("bleu")(REF, REF).value == pytest.approx(1.0)
    with pytest.raises(ScoringError, match="reference text"):
        get_scorer("bleu")(GOOD, None)


def test_embedding_similarity_on_shipped_minilm():
    sim = get_scorer("embedding_similarity")
    good, bad, same = sim(GOOD, REF), sim(BAD, REF), sim(REF, REF)
    assert same.value == pytest.approx(1.0, abs=1e-5)
    assert good.value > 0.6 > 0.3 > bad.value
    assert good.details["model"] == "minilm"
