"""Sign-in and roles in a real Chromium against `lab serve dashboard --sign-in` on the realistic store: a
request without a session cookie gets the login page, never data (page, websocket, autoload script); each role
signs in and sees and does only what it may. One server for the module; each role has its own browser context."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fixture_store import build
from test_dashboard_browser import ARGS, CHROMIUM, block_offsite, free_port

from lab.auth import add_user
from lab.traces import TraceStore

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parents[2]
USERS = {"vera": "viewer", "gus": "grader", "olga": "operator"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, store, fixture) of one signed-in server."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    d = tmp_path_factory.mktemp("signin")
    fx = build(d / "store")
    users = d / "users.json"
    for name, role in USERS.items():
        add_user(name, role, f"{name}-pw", users)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "serve", "dashboard", "--store", str(fx.path),
                             "--port", str(port), "--sign-in", "--users", str(users)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"lab serve exited with {proc.returncode}")
                time.sleep(0.5)
        store = TraceStore(fx.path)
        yield base, store, fx
        store.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _get(base: str, path: str, headers: dict | None = None) -> tuple[int, dict, str]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, dict(r.getheaders()), body


def test_no_cookie_gets_the_login_page_not_data(server):
    base, store, fx = server
    status, headers, body = _get(base, "/app")
    assert status == 302 and "login" in headers["Location"]
    page = urllib.request.urlopen(f"{base}/app").read().decode()  # redirects followed: the login form
    assert 'name="password"' in page
    run_ids = [r["run_id"] for r in store.list_runs()]
    assert run_ids and not any(r in page or r in body for r in run_ids)
    ws = _get(base, "/app/ws", {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert ws[0] in (302, 401, 403)
    autoload = _get(base, "/app/autoload.js?bokeh-autoload-element=x&bokeh-app-path=/app&bokeh-absolute-url=" + base)
    assert autoload[0] != 200 and not any(r in autoload[2] for r in run_ids)
    for cookie in ('user="olga"', "is_guest=1"):  # an unsigned cookie is no session
        assert _get(base, "/app", {"Cookie": cookie})[0] == 302
    assert _get(base, "/")[0] == 302


def _sign_in(browser, base: str, name: str, password: str | None = None):
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    offsite: list[str] = []
    block_offsite(page, offsite)
    page.goto(f"{base}/app")
    expect(page.locator('input[name="username"]')).to_be_visible()
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', password or f"{name}-pw")
    page.click('button[type="submit"]')
    return ctx, page, offsite


def _tabs(page) -> list[str]:
    page.wait_for_selector(".bk-tab")
    return [t.strip() for t in page.locator(".bk-tab").all_inner_texts()]


def test_wrong_password_stays_on_the_login_page(server, browser):
    base, _, _ = server
    ctx, page, offsite = _sign_in(browser, base, "vera", "not-her-password")
    page.wait_for_url(re.compile(r"/login\?error="))
    assert "Invalid username or password" in page.content()
    page.wait_for_function("document.getElementById('logo').complete")
    assert page.evaluate("document.getElementById('logo').naturalWidth") > 0 and not offsite  # served offline
    ctx.close()


def test_viewer_reads_but_cannot_launch_grade_or_fork(server, browser):
    from playwright.sync_api import expect

    base, store, fx = server
    ctx, page, offsite = _sign_in(browser, base, "vera")
    page.wait_for_url(re.compile(r"/app"))
    assert _tabs(page) == ["Runs", "Trace", "Side by side", "Human vs AI"]
    page.wait_for_selector(".tabulator-row")
    expect(page.locator(".lab-role")).to_have_text("viewer")
    ctx.add_cookies([{"name": "is_guest", "value": "1", "url": base}])  # Panel would read this as user 'guest'
    page.reload()
    expect(page.locator(".lab-user")).to_have_text("vera")
    page.locator(".bk-tab").filter(has_text=re.compile("^Trace$")).click()
    box = page.locator(".lab-run-id input")
    box.fill(fx.dera[0])
    box.press("Enter")
    expect(page.locator(".lab-run-header")).to_contain_text(fx.dera[0])
    runs_before = len(store.list_runs())
    page.locator(".lab-fork button").click()
    expect(page.locator(".lab-notice").filter(has_text="may not fork")).to_be_visible()
    assert len(store.list_runs()) == runs_before and not offsite
    ctx.close()


def test_grader_sees_only_a_blind_queue_and_grades_as_themselves(server, browser):
    from playwright.sync_api import expect

    base, store, _ = server
    ctx, page, offsite = _sign_in(browser, base, "gus")
    page.wait_for_url(re.compile(r"/app"))
    assert _tabs(page) == ["Grade"]
    assert page.locator(".tabulator-row").count() == 0 and page.locator(".lab-run-header").count() == 0
    box = page.get_by_role("textbox", name="grader id")
    expect(box).to_have_value("gus")
    expect(box).to_be_disabled()
    expect(page.locator(".lab-grade-output")).to_be_visible()
    page.wait_for_timeout(1500)
    before = store.scores_frame().query("source == 'gus'").shape[0]
    for dim in ("correctness", "clarity"):
        page.locator(f".lab-grade-{dim}").get_by_role("button", name="4", exact=True).click()
    page.get_by_role("button", name="Submit grade").click()
    for _ in range(60):
        if store.scores_frame().query("source == 'gus'").shape[0] == before + 2:
            break
        time.sleep(0.25)
    assert store.scores_frame().query("source == 'gus'").shape[0] == before + 2
    assert not offsite
    ctx.close()


def test_operator_sees_launch_and_fork_and_signs_out(server, browser):
    from playwright.sync_api import expect

    base, _, fx = server
    ctx, page, offsite = _sign_in(browser, base, "olga")
    page.wait_for_url(re.compile(r"/app"))
    assert _tabs(page) == ["Runs", "Trace", "Side by side", "Human vs AI", "Launch"]
    page.locator(".bk-tab").filter(has_text=re.compile("^Launch$")).click()
    expect(page.locator(".lab-start button")).to_be_visible()
    page.locator(".bk-tab").filter(has_text=re.compile("^Trace$")).click()
    expect(page.locator(".lab-fork button")).to_be_enabled()
    page.goto(f"{base}/logout")
    page.goto(f"{base}/app")
    expect(page.locator('input[name="password"]')).to_be_visible()
    assert not offsite
    ctx.close()
