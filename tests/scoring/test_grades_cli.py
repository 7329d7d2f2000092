"""``lab grades import`` and ``lab grades agreement`` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys


def lab(*args):
    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_grades_import_and_agreement(tmp_path):
    db = tmp_path / "t.db"
    f = tmp_path / "panel.csv"
    rows = ["annotator_id,text_id,value"]
    for i, (x, y) in enumerate([(1, 1), (2, 2), (3, 2), (4, 4), (5, 5), (2, 1)]):
        rows += [f"ann1,item{i},{x}", f"ann2,item{i},{y}"]
    f.write_text("\n".join(rows) + "\n")
    r = lab("grades", "import", str(f), "--column", "grader=annotator_id", "--column", "item=text_id",
            "--store", str(db))
    assert r.returncode == 0, r.stderr
    assert "onto 2 run(s)" in r.stdout
    r = lab("grades", "agreement", "ann1", "ann2", "--json", "--n-boot", "200", "--store", str(db))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 6 and out["kind"] == "ordinal"
    assert out["measures"]["percent_agreement"]["estimate"] == 4 / 6
    r = lab("grades", "agreement", "ann1", "nobody", "--store", str(db))
    assert r.returncode == 2 and "no grades by ['nobody']" in r.stderr
    r = lab("grades", "import", str(f), "--column", "oops", "--store", str(db))
    assert r.returncode == 2 and "OURS=THEIRS" in r.stderr
