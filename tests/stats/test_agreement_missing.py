"""agreement(missing=...): LLMBar/MT-Bench judge accuracy counts a missing verdict as wrong; ratings_table
names the dimensions there are instead of returning an empty table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab.stats import StatsError, StatsWarning, agreement, ratings_table
from lab.traces import RunRecorder, Score

ITEMS = [f"q{i}" for i in range(6)]


def test_missing_verdicts_drop_or_count_as_wrong():
    judge = pd.Series(["A", "B", None, "A", np.nan, "B"], index=ITEMS, name="judge")
    human = pd.Series(["A", "B", "A", "B", "B", "B"], index=ITEMS, name="human")
    with pytest.warns(StatsWarning, match="dropped 2 of 6"):
        dropped = agreement(judge, human, n_boot=0)
    assert dropped.n == 4 and dropped["percent_agreement"] == pytest.approx(3 / 4)
    counted = agreement(judge, human, missing="category", n_boot=0)
    assert counted.n == 6 and counted["percent_agreement"] == pytest.approx(3 / 6)  # LLMBar's accuracy
    assert "(missing)" in counted.confusion.index
    # a reference grade that is missing is still dropped: there is nothing to be right or wrong against
    with pytest.warns(StatsWarning, match="dropped 1 of 6"):
        ref_gap = agreement(judge, human.where(human.index != "q0"), missing="category", n_boot=0)
    assert ref_gap.n == 5
    with pytest.raises(StatsError, match="nominal"):
        agreement([1.0, 2.0, None], [1.0, 2.0, 3.0], kind="interval", missing="category")
    with pytest.raises(StatsError, match="'drop' or 'category'"):
        agreement(judge, human, missing="zero")


def test_ratings_table_by_source_for_named_dimensions(store):
    for item, (a, b) in {"i1": (4, 5), "i2": (2, 2), "i3": (3, 1)}.items():
        rec = RunRecorder.start(store, {"task": item})
        rec.score(Score("rubric", a, provenance="human", source="alice", item_id=item, dimension="accuracy"))
        rec.score(Score("rubric", b, provenance="model", source="judge", item_id=item, dimension="accuracy"))
        rec.finish()
    frame = store.scores_frame()
    with pytest.raises(StatsError, match=r"dimension\(s\) \['accuracy'\]"):
        ratings_table(frame, by="source")
    table = ratings_table(frame, by="source", dimension="accuracy")
    assert table.shape == (3, 2) and table.loc["i3", "alice"] == 3
