"""The page at ``/`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium against the real server of conftest.py. An answer is seen
denoising (a canvas with mask boxes, then none), the settings and the whole conversation are
sent, and a server error is shown in the chat.

Without Chromium, chromedriver or selenium these tests are skipped, except under CI (``CI`` set),
where .ci/run installs them: there they fail."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

pytestmark = pytest.mark.slow

MASK = "\u2591"
PROMPT = "merhaba kedi nasıl ?"
TIMEOUT = 60.0

# Wraps fetch so the requests the page makes can be checked (their URL, headers and body).
RECORD_REQUESTS = """
if (!window.__requests) {
  window.__requests = [];
  const original = window.fetch;
  window.fetch = (url, init) => {
    window.__requests.push({
      url: String(url),
      headers: (init && init.headers) || {},
      body: init && init.body ? JSON.parse(init.body) : null,
    });
    return original(url, init);
  };
}
"""

# Holds back each piece of the next answer's stream by `ms`, in the page's own fetch: a tiny model
# answers in a blink, and Stop needs an answer still under way to stop.
SLOW_STREAM = """
const ms = arguments[0];
const original = window.fetch;
window.fetch = async (url, init) => {
  const response = await original(url, init);
  if (!response.body || !String(url).endsWith('/chat/completions')) return response;
  const sleep = () => new Promise((resolve) => setTimeout(resolve, ms));
  const slow = response.body.pipeThrough(new TransformStream({
    async transform(piece, out) { await sleep(); out.enqueue(piece); },
  }));
  return new Response(slow, { status: response.status, headers: response.headers });
};
"""

# Records every distinct state of the newest canvas, as a MutationObserver sees them: each step
# the page draws, however fast the steps come.
RECORD_CANVAS = """
window.__states = [];
const log = document.querySelector('[data-testid="log"]');
const record = () => {
  const all = document.querySelectorAll('[data-testid="canvas"]');
  const canvas = all[all.length - 1];
  if (!canvas) return;
  const state = {
    html: canvas.innerHTML,
    text: canvas.textContent,
    boxes: canvas.querySelectorAll('.mask').length,
    masks: canvas.dataset.masks === undefined ? null : Number(canvas.dataset.masks),
    step: canvas.dataset.step === undefined ? null : Number(canvas.dataset.step),
    status: document.querySelector('[data-testid="status"]').textContent,
  };
  const last = window.__states[window.__states.length - 1];
  if (!last || last.html !== state.html || last.masks !== state.masks) window.__states.push(state);
};
new MutationObserver(record).observe(log, {
  subtree: true, childList: true, characterData: true, attributes: true,
});
"""


def _missing(what: str):
    """Skip, or under CI (which installs the browser) fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{what}: under CI the browser test must run, not be skipped")
    pytest.skip(what)


def _which(*names: str) -> str | None:
    """The first of ``names`` (on PATH, or an absolute path) that is an executable."""
    return next(filter(None, map(shutil.which, names)), None)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (diffutron-serve's test group)")
    chromium = _which("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
    if chromium is None:
        _missing("Chromium is not installed (apt-get install chromium; .ci/run does)")
    driver_path = _which("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
    if driver_path is None:
        _missing("chromedriver is not installed (apt-get install chromium-driver; .ci/run does)")

    options = Options()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        "--window-size=1280,900",
        "--lang=tr-TR",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A driver path given: Selenium Manager is not asked to download anything (we are offline).
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser, server):
    """The page freshly loaded (no stored settings), its requests and canvases recorded."""
    browser.get(f"{server.url}/")
    browser.execute_script("localStorage.clear();")
    browser.get(f"{server.url}/")
    browser.execute_script(RECORD_REQUESTS)
    _wait(lambda: browser.find_element("id", "model").text not in ("", "…"), "the model id")
    browser.get_log("browser")  # start with an empty console
    return browser


def _wait(condition, what: str, timeout: float = TIMEOUT, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _fill(browser, testid: str, value: str) -> None:
    field = browser.find_element("css selector", f'[data-testid="{testid}"]')
    field.clear()
    field.send_keys(value)


def _answers(browser):
    return browser.find_elements("css selector", '[data-testid="answer"]')


def _ask(browser, prompt: str | None, *, enter: bool = False):
    """Types ``prompt`` (None: keeps what is typed), sends it (the button, or Enter) and polls
    every 20 ms until its answer is done; the answer element and every canvas HTML seen."""
    from selenium.webdriver.common.keys import Keys

    before = len(_answers(browser))
    if prompt is not None:
        _fill(browser, "prompt", prompt)
    if enter:
        browser.find_element("css selector", '[data-testid="prompt"]').send_keys(Keys.ENTER)
    else:
        browser.find_element("css selector", '[data-testid="send"]').click()
    polled = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        answers = _answers(browser)
        if len(answers) > before:
            answer = answers[-1]
            seen = browser.execute_script(
                "const a = arguments[0], c = a.querySelector('[data-testid=\"canvas\"]');"
                "return [a.dataset.done, c ? c.innerHTML : null];",
                answer,
            )
            if seen[1] is not None and (not polled or polled[-1] != seen[1]):
                polled.append(seen[1])
            if seen[0] == "true":
                return answer, polled
        assert time.monotonic() < deadline, f"no finished answer after {TIMEOUT} s"
        time.sleep(0.02)


def _severe(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_an_answer_denoises_live_and_ends_as_the_servers_answer(page, server, tmp_path):
    import httpx

    _fill(page, "max_tokens", "32")
    _fill(page, "steps", "32")  # many steps: many canvases, each with fewer masks
    page.execute_script(RECORD_CANVAS)
    started = time.monotonic()
    answer, polled = _ask(page, PROMPT)
    took = time.monotonic() - started

    assert answer.get_attribute("data-state") == "complete", answer.text
    states = page.execute_script("return window.__states;")
    live = [s for s in states if s["masks"] is not None]
    assert live, f"no canvas was drawn (states: {states})"
    # An intermediate state still shows masked positions as boxes, one box per mask left.
    masked = [s for s in live if s["boxes"] > 0]
    assert masked, f"no canvas state with a mask box was seen: {live}"
    assert all(s["boxes"] == s["masks"] for s in live), live
    assert MASK not in "".join(s["text"] for s in live)  # boxes, not the raw ░ character
    assert max(s["masks"] for s in live) <= 32
    masks = [s["masks"] for s in live]
    assert masks == sorted(masks, reverse=True), f"masks came back: {masks}"
    assert live[-1]["masks"] == 0 and live[-1]["boxes"] == 0
    steps = [s["step"] for s in live]
    assert steps == sorted(steps) and len(set(steps)) >= 2, steps
    assert any("step" in s["status"] and "masks left" in s["status"] for s in live)

    # The finished answer: no boxes left, and the same text the API answers for those settings.
    canvas = answer.find_element("css selector", '[data-testid="canvas"]')
    final = page.execute_script("return arguments[0].textContent;", canvas)
    assert canvas.get_attribute("data-masks") == "0"
    assert not canvas.find_elements("css selector", ".mask")
    body = {
        "model": page.find_element("id", "model").text,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 32,
        "steps": 32,
    }
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=TIMEOUT).json()
    assert final == reply["choices"][0]["message"]["content"]
    assert "Done" in page.find_element("css selector", '[data-testid="status"]').text

    # Exactly the filled settings were sent, with the canvas asked for.
    (request,) = [r for r in page.execute_script("return window.__requests;") if r["body"]]
    assert request["url"].endswith("/v1/chat/completions")
    assert request["body"] == {
        "model": body["model"],
        "messages": body["messages"],
        "stream": True,
        "canvas": True,
        "max_tokens": 32,
        "steps": 32,
    }
    assert "Authorization" not in request["headers"]

    shot = tmp_path / "page.png"
    assert page.save_screenshot(str(shot))
    assert shot.is_file() and shot.stat().st_size > 0
    assert not _severe(page)
    polled_boxes = sum('class="mask"' in html for html in polled)  # what 20 ms polling caught
    print(
        f"{len(live)} canvases in {took:.2f} s ({polled_boxes} with boxes seen by polling); "
        f"final answer {final!r}; screenshot {shot}"
    )


def test_the_conversation_settings_and_key_are_sent_and_kept(page):
    from selenium.webdriver.common.keys import Keys

    _fill(page, "max_tokens", "16")
    _fill(page, "temperature", "0")
    _fill(page, "threshold", "0.9")
    _fill(page, "api_key", "sk-test")
    page.find_element("css selector", '[data-testid="prompt"]').click()  # the key's change event
    first, _ = _ask(page, "merhaba")
    assert first.get_attribute("data-state") == "complete", first.text
    reply = page.execute_script(
        "return arguments[0].querySelector('[data-testid=\"canvas\"]').textContent;", first
    )

    # Shift+Enter is a new line, Enter sends: the second question carries the whole history.
    prompt = page.find_element("css selector", '[data-testid="prompt"]')
    prompt.send_keys("kedi", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "köpek")
    assert prompt.get_attribute("value") == "kedi\nköpek"
    assert len(_answers(page)) == 1
    second, _ = _ask(page, None, enter=True)
    assert second.get_attribute("data-state") == "complete", second.text

    posts = [r for r in page.execute_script("return window.__requests;") if r["body"]]
    assert len(posts) == 2
    assert posts[1]["body"]["messages"] == [
        {"role": "user", "content": "merhaba"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "kedi\nköpek"},
    ]
    for post in posts:
        assert post["headers"]["Authorization"] == "Bearer sk-test"
        assert {k: post["body"][k] for k in ("max_tokens", "temperature", "threshold")} == {
            "max_tokens": 16,
            "temperature": 0,
            "threshold": 0.9,
        }
        assert "steps" not in post["body"] and "repetition_penalty" not in post["body"]
    # The settings and the key are kept in this browser.
    stored = page.execute_script("return JSON.stringify(Object.assign({}, localStorage));")
    assert json.loads(stored)["diffutron.api_key"] == "sk-test"
    assert json.loads(stored)["diffutron.threshold"] == "0.9"
    assert not _severe(page)


def test_a_server_error_is_shown_in_the_chat(page):
    from selenium.common.exceptions import NoAlertPresentException

    _fill(page, "max_tokens", "32")
    _fill(page, "block_length", "8")
    _fill(page, "steps", "3")  # 4 blocks: 3 steps cannot be split evenly, the server says so
    answer, _ = _ask(page, PROMPT)
    assert answer.get_attribute("data-state") == "error"
    text = answer.text
    assert "steps" in text, text
    status = page.find_element("css selector", '[data-testid="status"]').text
    assert status.startswith("Hata / Error") and "steps" in status
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018 (shown in the page, never as an alert)
    # The question is not kept in the history, and its text is back in the prompt.
    assert page.find_element("css selector", '[data-testid="prompt"]').get_attribute("value") == (
        PROMPT
    )


def test_stop_aborts_the_answer_under_way(page):
    page.execute_script(SLOW_STREAM, 150)
    _fill(page, "max_tokens", "32")
    _fill(page, "steps", "32")
    _fill(page, "prompt", PROMPT)
    page.find_element("css selector", '[data-testid="send"]').click()
    stop = page.find_element("css selector", '[data-testid="stop"]')
    _wait(
        lambda: page.execute_script(
            "return document.querySelector('[data-testid=\"canvas\"] .mask') !== null;"
        ),
        "a canvas with masks",
    )
    assert stop.is_enabled()
    assert not page.find_element("css selector", '[data-testid="send"]').is_enabled()
    stop.click()
    (answer,) = _answers(page)
    _wait(lambda: answer.get_attribute("data-done") == "true", "the stopped answer")
    assert answer.get_attribute("data-state") == "stopped"
    assert "Stopped" in page.find_element("css selector", '[data-testid="status"]').text
    assert not stop.is_enabled()
    assert page.find_element("css selector", '[data-testid="send"]').is_enabled()
    assert not answer.find_elements("css selector", ".mask")  # no half-drawn canvas is left


# Answers the next chat request with a canned stream, in the page's own fetch: an answer whose
# text holds ░, while two positions are still masked.
CANNED_STREAM = """
const events = arguments[0];
const original = window.fetch;
window.fetch = async (url, init) => {
  if (!String(url).endsWith('/chat/completions')) return original(url, init);
  const lines = events.map((e) => `data: ${JSON.stringify(e)}\\n\\n`);
  const text = lines.join('') + 'data: [DONE]\\n\\n';
  return new Response(text, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
};
"""


def test_a_mask_glyph_in_an_answer_is_drawn_as_text_not_as_a_mask(page):
    def chunk(delta, spans, masks, step, reason=None):
        choice = {"index": 0, "delta": {"content": delta}, "finish_reason": reason}
        canvas = {"step": step, "spans": spans, "masks": masks}
        return {"object": "chat.completion.chunk", "choices": [choice], "canvas": canvas}

    events = [
        chunk(f"a{MASK}b", [{"text": f"a{MASK}b "}, {"masks": 2}], 2, 1),
        chunk(" c", [{"text": f"a{MASK}b c"}], 0, 2, reason="stop"),
    ]
    page.execute_script(RECORD_CANVAS)
    page.execute_script(CANNED_STREAM, events)
    answer, _ = _ask(page, PROMPT)
    states = page.execute_script("return window.__states;")
    drawn = [s for s in states if s["masks"] == 2]
    assert drawn and drawn[0]["boxes"] == 2, states  # two masks: two boxes, the ░ is text
    assert MASK in drawn[0]["text"]
    body = answer.find_element("css selector", '[data-testid="canvas"]')
    assert page.execute_script("return arguments[0].textContent;", body) == f"a{MASK}b c"
    assert not _severe(page)
