"""``lab grades import`` and ``lab grades agreement`` through the CLI entry point (in process)."""

from __future__ import annotations

import json
import sys

import pytest

from lab.cli.main import main


def lab(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["lab", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
        sys.exit(0)
    out = capsys.readouterr()
    return exit_.value.code or 0, out.out, out.err


def test_grades_import_and_agreement(tmp_path, monkeypatch, capsys):
    db = str(tmp_path / "t.db")
    f = tmp_path / "panel.csv"
    rows = ["annotator_id,text_id,value"]
    for i, (x, y) in enumerate([(1, 1), (2, 2), (3, 2), (4, 4), (5, 5), (2, 1)]):
        rows += [f"ann1,item{i},{x}", f"ann2,item{i},{y}"]
    f.write_text("\n".join(rows) + "\n")
    code, out, err = lab(monkeypatch, capsys, "grades", "import", str(f), "--column", "grader=annotator_id",
                         "--column", "item=text_id", "--store", db)
    assert code == 0, err
    assert "onto 2 run(s)" in out
    code, out, err = lab(monkeypatch, capsys, "grades", "agreement", "ann1", "ann2", "--json", "--n-boot", "200",
                         "--store", db)
    assert code == 0, err
    res = json.loads(out)
    assert res["n"] == 6 and res["kind"] == "ordinal"
    assert res["measures"]["percent_agreement"]["estimate"] == 4 / 6
    code, _, err = lab(monkeypatch, capsys, "grades", "agreement", "ann1", "nobody", "--store", db)
    assert code == 2 and "no grades by ['nobody']" in err
    code, _, err = lab(monkeypatch, capsys, "grades", "import", str(f), "--column", "oops", "--store", db)
    assert code == 2 and "OURS=THEIRS" in err
