"""The real Temporal UI (the dev server's) shows a run's input decrypted through the
gateway's codec server to a browser holding the codec cookie (admin token), and only
ciphertext to a browser without it. Headless Debian Chromium (/usr/bin/chromium, installed
by scripts/ensure-chromium.sh) driven by Playwright; the decrypted page's screenshot is
docs/screenshots/temporal-ui-decrypted.png, the other browser's temporal-ui-no-token.png
(written there with UPDATE_SCREENSHOTS=1, else into the test's tmp dir)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from api.http_server import uvicorn_options
from engine import devserver
from shared.config import load_catalog
from shared.security.payload_keys import new_key_entry
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for
from tests.integration.procs import kill, wait_port
from tests.support.server import ThreadedServer, free_port

pytestmark = pytest.mark.temporal
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ADMIN = "ui-admin-token-0123456789"
PROMPT = "quokka-7781 wants a haiku about Temporal"


@pytest.fixture
def ui_stack(tmp_path: Path, config_file: Path) -> Iterator[tuple[str, ThreadedServer]]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (scripts/ensure-chromium.sh installs it)")
    pytest.importorskip("playwright.sync_api")
    tport, uport, gport = free_port(), free_port(), free_port()
    gateway = f"http://127.0.0.1:{gport}"
    cmd = devserver.command(ip="127.0.0.1", port=tport, ui_port=uport, db_file=None,
                            codec_endpoint=f"{gateway}/codec")
    log = tmp_path / "devserver.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_port(tport, 60)
        wait_port(uport, 60)
        settings = settings_for(tmp_path, config_file, f"127.0.0.1:{tport}",
                                admin_token=ADMIN, temporal_payload_keys=new_key_entry("ui1"),
                                temporal_ui_url=f"http://127.0.0.1:{uport}")
        srv = ThreadedServer(create_app(settings, load_catalog(settings)), port=gport,
                             **uvicorn_options(settings))
        srv.start()
        try:
            yield f"http://127.0.0.1:{uport}", srv
        finally:
            srv.stop()
    finally:
        kill(proc)


def _loopback_only(route: Any) -> None:
    """Nothing leaves loopback (the UI would fetch its news feed, fonts…)."""
    host = urlsplit(route.request.url).hostname
    if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
        route.continue_()
    else:
        route.abort()


def _open(browser: Any, url: str, endpoint: str, cookie: str | None) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # the UI's codec settings, as an operator sets them once in its data-encoder dialog
    context.add_init_script(
        f"localStorage.setItem('endpoint', {json.dumps(json.dumps(endpoint))});"
        "localStorage.setItem('overrideRemoteCodecConfiguration', 'true');"
        "localStorage.setItem('includeCredentials', 'true');")
    context.route("**/*", _loopback_only)
    if cookie is not None:
        context.add_cookies([{"name": "tokenhub_codec", "value": cookie,
                              "domain": "127.0.0.1", "path": "/codec"}])
    page = context.new_page()
    page.goto(url, wait_until="load", timeout=60_000)
    return page


def test_ui_shows_decrypted_input_only_with_the_token(ui_stack: tuple[str, ThreadedServer],
                                                      fake: FakeProvider,
                                                      tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    ui, gw = ui_stack
    shots = SHOTS if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    rid = f"ui-{uuid.uuid4().hex[:12]}"
    r = httpx.post(f"{gw.url}/v1/chat", headers={"X-Request-ID": rid}, trust_env=False,
                   timeout=60, json={"request": {"messages": [{"role": "user",
                                                               "content": PROMPT}],
                                                 "model_hint": "small"}})
    assert r.status_code == 200 and r.headers["x-tokenhub-executor"] == "temporal", r.text
    run_url = r.headers["x-tokenhub-run-url"]
    assert run_url == f"{ui}/namespaces/default/workflows/{rid}"
    session = httpx.post(f"{gw.url}/codec/session", trust_env=False,
                         headers={"Authorization": f"Bearer {ADMIN}"})
    cookie = session.cookies["tokenhub_codec"]
    endpoint = f"{gw.url}/codec"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = _open(browser, run_url, endpoint, cookie)
            page.get_by_text("quokka-7781").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "temporal-ui-decrypted.png"))
            stranger = _open(browser, run_url, endpoint, None)
            # the UI reports the codec's refusal (a 401) and shows the ciphertext
            stranger.get_by_text("Codec Server could not").first.wait_for(state="attached",
                                                                    timeout=60_000)
            stranger.screenshot(path=str(shots / "temporal-ui-no-token.png"))
            text = stranger.locator("body").inner_text()
            assert rid in text  # the run is shown...
            assert "quokka" not in text  # ...but not its input
        finally:
            browser.close()
