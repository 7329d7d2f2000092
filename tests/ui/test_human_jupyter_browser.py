"""A human expert in JupyterLab on a kernel inside the task's sandbox, driven in a real Chromium: `lab human
repo-setup/tinyclf-pinned-version --jupyter` serves the notebook; cells run (in the sandbox), `%score` answers,
`%submit` ends the session; a page reload keeps the kernel's state; the recorded events and SUPER's three
scores are checked in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.traces import TraceStore

pytestmark = [pytest.mark.ui, pytest.mark.docker]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
CELLS = [
    "%cd /work/tinyclf\n!pip install -r requirements.txt",
    "!sed -i 's/tabulate==0.7.5/tabulate>=0.9/' requirements.txt && pip install -r requirements.txt",
    "!python train.py --alpha 0.5",
    "import json\nmetrics = json.load(open('out/metrics.json'))\n"
    "print(json.dumps({'accuracy': metrics['test_accuracy']}))",
]


AFTER_RELOAD = "print(metrics['test_accuracy'])"


@pytest.fixture
def session(lab_human_jupyter):
    """`lab human ... --jupyter` in its own process; yields (process, url, store path, lines printed)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no /usr/bin/chromium")
    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    ensure_image("repo-setup", log=lambda _line: None)
    return lab_human_jupyter()


def _api_status(url: str, path: str, method: str = "GET") -> int:
    """HTTP status of a request to the session's server (with its token)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    req = urllib.request.Request(f"{parts.scheme}://{parts.netloc}/{path}", method=method,
                                 headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _run_cell(page, code: str, expect: str, timeout_ms: int = 120_000) -> str:
    """Type ``code`` into the empty code cell at the end (made below the last cell when there is none), run it
    with Shift+Enter, and wait until its output contains ``expect``; returns the output's text."""
    code_cells = page.locator(".jp-Notebook .jp-CodeCell")
    n = code_cells.count()
    if n == 0:
        page.locator(".jp-Notebook .jp-Cell").last.click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")  # a new code cell below the instructions
        index = 0
    else:
        index = n - 1  # Shift+Enter on the last cell left an empty one after it
    code_cells.nth(index).locator(".cm-content").click()
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        """([i, expect]) => { const c = document.querySelectorAll('.jp-Notebook .jp-CodeCell')[i];
             const out = c && c.querySelector('.jp-OutputArea');
             return out && out.innerText.includes(expect); }""",
        arg=[index, expect], timeout=timeout_ms)
    return code_cells.nth(index).locator(".jp-OutputArea").inner_text()


def test_human_solves_repo_setup_in_jupyterlab(session):
    from playwright.sync_api import sync_playwright

    proc, url, db, lines = session
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_selector("text=Python 3 (task sandbox)", timeout=120_000)
            page.wait_for_function("() => document.body.innerText.includes('Idle')", timeout=120_000)
            assert "ERROR" in _run_cell(page, CELLS[0], "tabulate==0.7.5")
            assert "Successfully installed tabulate" in _run_cell(page, CELLS[1], "Successfully installed")
            _run_cell(page, CELLS[2], "accuracy:")
            printed = _run_cell(page, CELLS[3], "accuracy").strip().splitlines()[-1]
            page.keyboard.press("Control+s")  # save, reload the page: the session and the kernel's state survive
            page.wait_for_timeout(1000)
            page.reload()
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
            page.wait_for_function("() => document.body.innerText.includes('Idle')", timeout=120_000)
            assert "0.9" in _run_cell(page, AFTER_RELOAD, "0.9")
            # links planted in the workdir lead nowhere on the host: the server reads the workdir's host side
            _run_cell(page, "!ln -s / /work/rootfs && ln -s /etc/hostname /work/hostlink && echo planted", "planted")
            for path in ("api/contents/rootfs/etc/hostname", "api/contents/rootfs", "api/contents/hostlink",
                         "files/rootfs/etc/hostname", "files/hostlink"):
                status = _api_status(url, path)
                assert status in (403, 404), f"{path}: HTTP {status}"
            status = _api_status(url, "api/contents/hostlink/checkpoints", "POST")  # would copy the host file
            assert status in (403, 404), f"checkpoint of hostlink: HTTP {status}"
            assert _api_status(url, "api/contents/tinyclf/train.py") == 200
            assert "this task does not give intermediate scores" in _run_cell(page, "%score", "score")
            _run_cell(page, f"%submit {printed}", "the session has ended")
            page.screenshot(path=str(ARTIFACTS / "human_jupyter.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "human_jupyter_failed.png"))
            raise
        finally:
            browser.close()
    assert proc.wait(60) == 0, "".join(lines[-30:]) + proc.stdout.read()[-3000:]
    store = TraceStore(db)
    (run,) = store.list_runs()
    assert run["status"] == "done" and run["is_human"]
    actions = [e.attrs for e in store.events(run["run_id"], kinds=["human_action"])]
    cells = [a for a in actions if a["lab.action"] == "kernel_cell"]
    assert [c["lab.arguments"]["code"] for c in cells][:5] == [*CELLS, AFTER_RELOAD]
    assert all(c["gen_ai.tool.name"] == "kernel" and c["lab.kernel.outputs"]["code"] == c["lab.arguments"]["code"]
               for c in cells)
    assert "accuracy: 0.9" in cells[2]["lab.kernel.outputs"]["stdout"]
    assert json.loads(printed) == json.loads(cells[3]["lab.kernel.outputs"]["stdout"])
    assert [a["lab.action"] for a in actions if a["lab.action"] != "kernel_cell"] == ["submit"]
    frame = store.scores_frame(final_only=True)
    scores = dict(zip(frame["scorer"], frame["value"], strict=True))
    assert {k: scores[k] for k in ("output_match", "landmarks", "entrypoint")} == {
        "output_match": 1.0, "landmarks": 1.0, "entrypoint": 1.0}
