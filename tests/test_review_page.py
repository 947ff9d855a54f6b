"""The review page in headless Chromium (Debian's /usr/bin/chromium via Playwright): one keyboard cursor, the
audio window on the card, no silent overwrite between two pages, and counts that match the filters.
(Layout, contrast, zoom and pan: test_review_layout.py.)"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from pycocotools.coco import COCO

from builder.curate.decisions import read_decisions
from builder.review.state import REJECT_REASONS
from support.browser import card, open_page, word
from support.review import FRAME_SIDE, clip_id

BANJO = [clip_id("Banjo", i) for i in range(4)]
DRUM = [clip_id("Drum", i) for i in range(4)]
TABLA = [clip_id("Tabla", i) for i in range(4)]
POLL_WAIT_MS = 8_000          # the page polls every 2 s while visible


def focused(page: Page) -> dict:
    """What has the keyboard focus: its card's id, its data-action, tag and id."""
    return page.evaluate("""() => { const a = document.activeElement;
        return { card: a.closest('.card')?.dataset.id || null, action: a.dataset?.action || null,
                 tag: a.tagName, id: a.id, inMaskList: Boolean(a.closest('#mask-list')),
                 classPick: a.classList.contains('class-pick') }; }""")


def tab_until(page: Page, condition, limit: int = 80, key: str = "Tab") -> dict:
    for _ in range(limit):
        page.keyboard.press(key)
        where = focused(page)
        if condition(where):
            return where
    raise AssertionError(f"{key} never reached the element; last focus {focused(page)}")


def active_card(page: Page) -> str:
    (cid,) = page.locator('.card[aria-current="true"]').evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    return cid


def decided(root) -> dict:
    path = root / "decisions.csv"
    return {k: (d.decision, d.reviewer) for k, d in read_decisions(path).items()} if path.exists() else {}


def test_one_cursor_the_focused_card_is_the_one_acted_on(browser, served):
    server, root = served
    page = open_page(browser, server.url)
    tab_until(page, lambda f: f["id"] == "reviewer")                    # keyboard only, from the top
    page.keyboard.type("cora")
    page.keyboard.press("Enter")
    where = tab_until(page, lambda f: f["card"] is not None and f["action"] is None)
    assert where["card"] == BANJO[0] == active_card(page)                 # Tab lands on the active card
    assert page.evaluate("getComputedStyle(document.activeElement).boxShadow") != "none"   # a visible focus
    page.keyboard.press("ArrowRight")
    assert focused(page)["card"] == BANJO[1] == active_card(page)
    expect(card(page, BANJO[0])).not_to_have_attribute("aria-current", "true")
    # Tab goes into the focused card's buttons; Enter on "Accept" accepts that card and nothing else
    where = tab_until(page, lambda f: f["action"] == "accept")
    assert where["card"] == BANJO[1]
    page.keyboard.press("Enter")
    expect(card(page, BANJO[1])).to_have_class(word("accepted"))
    assert "#mask" not in page.url                                      # no mask editor opened
    assert focused(page) | {"tag": None} == {"card": BANJO[2], "action": "accept", "tag": None, "id": "",
                                              "inMaskList": False, "classPick": False}   # on to the next card
    page.keyboard.press(" ")                                            # Space presses the focused button too
    expect(card(page, BANJO[2])).to_have_class(word("accepted"))
    assert focused(page)["card"] == DRUM[0]
    page.keyboard.press("Tab")                                          # Accept -> Reject of the same card
    assert focused(page) == {**focused(page), "card": DRUM[0], "action": "reject"}
    page.keyboard.press("Enter")
    expect(page.locator("#reject-dialog")).to_be_visible()
    page.keyboard.press("1")
    expect(card(page, DRUM[0]).locator(".decision")).to_contain_text(REJECT_REASONS[0])
    assert active_card(page) == DRUM[1] == focused(page)["card"]
    page.keyboard.press("a")                                            # a letter key: the focused card
    expect(card(page, DRUM[1])).to_have_class(word("accepted"))
    assert decided(root) == {BANJO[1]: ("accept", "cora"), BANJO[2]: ("accept", "cora"),
                             DRUM[0]: ("reject", "cora"), DRUM[1]: ("accept", "cora")}
    expect(page.locator("#history-count")).to_have_text("4")
    # a multi-step undo: z twice takes back the last two decisions, newest first
    page.keyboard.press("z")
    expect(card(page, DRUM[1])).to_have_class(word("undecided"))
    page.keyboard.press("z")
    expect(card(page, DRUM[0])).to_have_class(word("undecided"))
    expect(page.locator("#history-count")).to_have_text("2")
    assert decided(root) == {BANJO[1]: ("accept", "cora"), BANJO[2]: ("accept", "cora")}
    assert active_card(page) == DRUM[0] == focused(page)["card"]        # the undone card is shown
    # the counts table and the mask list are reachable by Tab, and Enter uses them
    where = tab_until(page, lambda f: f["classPick"], key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"class="))
    page.keyboard.press("Enter")                                        # again: back to all classes
    expect(page.locator(".card")).to_have_count(15)
    page.keyboard.press("Escape")
    card(page, DRUM[0]).focus()
    for _ in range(20):
        if active_card(page) == TABLA[0]:
            break
        page.keyboard.press("ArrowRight")
    assert active_card(page) == TABLA[0]
    where = tab_until(page, lambda f: f["tag"] == "A" and f["card"] == TABLA[0], limit=3)   # the mask link
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"#mask/{TABLA[0]}$"))
    tab_until(page, lambda f: f["inMaskList"])
    page.keyboard.press("g")                                            # the keys of the list's view still work
    expect(page).to_have_url(re.compile(r"#curate"))
    expect(card(page, TABLA[0])).to_have_attribute("aria-current", "true")
    page.keyboard.press("m")                                            # m: the mask editor of the focused card
    expect(page).to_have_url(re.compile(f"#mask/{TABLA[0]}$"))
    assert page.errors == []
    page.close()


def test_the_audio_window_is_seen_and_heard(browser, served):
    server, _ = served
    page = open_page(browser, server.url)
    audio_requests: list[str] = []
    page.on("request", lambda r: audio_requests.append(r.url) if "/media/audio/" in r.url else None)
    banjo = card(page, BANJO[0])
    expect(banjo.locator(".times")).to_have_text("2.0–5.0 s of 10 s")
    page.wait_for_function(f"""() => document.querySelector('.card[data-id="{BANJO[0]}"] .strip img').naturalWidth
                                     === 400""")
    box = banjo.locator(".strip").bounding_box()
    window = banjo.locator(".strip .window").bounding_box()
    assert window["x"] - box["x"] == pytest.approx(0.2 * box["width"], abs=2)     # 2.0 s of 10
    assert window["width"] == pytest.approx(0.3 * box["width"], abs=2)            # 3 s of 10
    expect(page.locator("#hover-play")).not_to_be_checked()
    for cid in DRUM:                                                    # moving over 4 cards fetches nothing...
        page.hover(f'.card[data-id="{cid}"] .thumb')
    banjo.locator("[data-action=play]").click()                         # ...the first request is this click's
    head = banjo.locator(".playhead")
    expect(head).to_be_visible()
    page.wait_for_function(f"""() => parseFloat(document.querySelector('.card[data-id="{BANJO[0]}"] .playhead')
                                     .dataset.time) > 2.3""")
    first = float(head.get_attribute("data-time"))
    left = head.bounding_box()["x"]
    page.wait_for_function(f"""() => parseFloat(document.querySelector('.card[data-id="{BANJO[0]}"] .playhead')
                                     .dataset.time) > {first + 0.3}""")
    assert head.bounding_box()["x"] > left + 0.02 * box["width"]       # the playhead moves while it plays
    assert 2.0 <= first < 5.0 and window["x"] <= left <= window["x"] + window["width"]
    assert audio_requests and all(BANJO[0] in url for url in audio_requests)
    expect(page.locator("#now-playing")).to_contain_text(BANJO[0])
    assert page.evaluate("document.querySelector('#player').paused") is False
    banjo.locator("[data-action=stop]").click()
    expect(head).to_be_hidden()
    assert page.evaluate("document.querySelector('#player').paused") is True
    card(page, BANJO[1]).focus()                                        # Space on a focused card plays it
    page.keyboard.press(" ")
    expect(card(page, BANJO[1]).locator(".playhead")).to_be_visible()
    page.keyboard.press(" ")
    expect(card(page, BANJO[1]).locator(".playhead")).to_be_hidden()
    assert page.errors == []
    page.close()


class HeldPolls:
    """Keeps a page's change-feed requests unanswered (as if it had not polled yet) until released."""

    def __init__(self, page: Page) -> None:
        self.holding = True
        self.routes: list = []
        page.route("**/api/changes*", self.handle)

    def handle(self, route) -> None:
        if self.holding:
            self.routes.append(route)
        else:
            route.continue_()

    def release(self) -> None:
        self.holding = False
        for route in self.routes:
            route.continue_()


def test_two_pages_on_one_clip_get_a_conflict_not_a_silent_overwrite(browser, served):
    server, root = served
    a = open_page(browser, server.url)
    b = open_page(browser, server.url)
    held = HeldPolls(b)
    a.fill("#reviewer", "cora")
    b.fill("#reviewer", "dan")
    card(a, DRUM[0]).locator(".meta").first.click()
    a.keyboard.press("a")
    expect(card(a, DRUM[0])).to_have_class(word("accepted"))
    expect(card(b, DRUM[0])).to_have_class(word("undecided"))            # b has not seen it
    card(b, DRUM[0]).locator(".meta").first.click()
    b.keyboard.press("r")
    b.keyboard.press("3")
    dialog = b.locator("#conflict-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("✓ accepted — cora")
    expect(dialog).to_contain_text(f"Yours: ✗ rejected: {REJECT_REASONS[2]} — dan")
    expect(card(b, DRUM[0])).to_have_class(word("accepted"))            # behind the dialog: theirs
    assert decided(root) == {DRUM[0]: ("accept", "cora")}               # nothing was overwritten
    b.locator("#conflict-keep-theirs").click()
    expect(dialog).to_be_hidden()
    assert decided(root) == {DRUM[0]: ("accept", "cora")}
    card(b, DRUM[0]).locator("button.reject").click()                   # now based on cora's: saved
    b.locator("#reject-reasons button").nth(2).click()
    expect(card(b, DRUM[0])).to_have_class(word("rejected"))
    assert decided(root) == {DRUM[0]: ("reject", "dan")}
    # a picks dan's change up by itself while visible
    expect(card(a, DRUM[0])).to_have_class(word("rejected"), timeout=POLL_WAIT_MS)
    expect(card(a, DRUM[0]).locator(".decision")).to_contain_text("dan")
    # a's undo of its accept would now undo dan's reject: it asks too; "use mine" writes it
    a.keyboard.press("z")
    expect(a.locator("#conflict-dialog")).to_be_visible()
    expect(a.locator("#conflict-theirs")).to_contain_text("dan")
    a.locator("#conflict-keep-mine").click()
    expect(card(a, DRUM[0])).to_have_class(word("undecided"))
    assert decided(root) == {}
    held.release()
    expect(card(b, DRUM[0])).to_have_class(word("undecided"), timeout=POLL_WAIT_MS)

    # masks: both open the same clip; b saves a drawing made on the old version -> asked, keeps a's
    a.goto(f"{server.url}#mask/{TABLA[1]}")
    b.goto(f"{server.url}#mask/{TABLA[1]}")
    for page in (a, b):
        expect(page.locator("#mask-title")).to_contain_text(TABLA[1])
    held = HeldPolls(b)
    for page, (x0, x1) in ((a, (20, 60)), (b, (70, 110))):
        box = page.locator("#mask-canvas").bounding_box()
        for x, y in ((x0, 20), (x1, 20), (x1, 60), (x0, 60)):
            page.mouse.click(box["x"] + x * box["width"] / FRAME_SIDE, box["y"] + y * box["height"] / FRAME_SIDE)
        page.keyboard.press("Enter")
    a.keyboard.press("s")
    expect(a.locator("#mask-canvas")).to_have_attribute("data-dirty", "false")
    theirs = a.locator("#mask-canvas").get_attribute("data-area")
    b.keyboard.press("s")
    expect(b.locator("#conflict-dialog")).to_be_visible()
    expect(b.locator("#conflict-theirs")).to_contain_text(f"{theirs} px")
    b.locator("#conflict-keep-theirs").click()
    expect(b.locator("#mask-canvas")).to_have_attribute("data-area", theirs)
    held.release()
    coco = COCO(str(root / "annotations.json"))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert coco.annToMask(ann)[40, 40] == 1 and coco.annToMask(ann)[40, 90] == 0      # a's mask, not b's
    assert a.errors == [] and b.errors == []
    a.close()
    b.close()


def cards_by_state(page: Page) -> dict[str, dict[str, int]]:
    return page.evaluate("""() => { const out = {};
        for (const c of document.querySelectorAll('.card')) {
          const id = c.dataset.id, cls = c.closest('#grid') && c.getAttribute('aria-label').split(', ')[1];
          const state = ['accepted', 'rejected', 'undecided'].find(s => c.classList.contains(s));
          out[cls] ??= { accepted: 0, rejected: 0, undecided: 0 };
          out[cls][state] += 1;
        }
        return out; }""")


def table_counts(page: Page) -> dict[str, dict[str, int]]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#class-counts tbody tr')]
        .map(tr => [tr.dataset.class, { accepted: +tr.cells[2].textContent, rejected: +tr.cells[3].textContent,
                                        undecided: +tr.cells[4].textContent }]))""")


def test_every_count_is_what_the_filters_show(browser, served):
    server, _ = served
    page = open_page(browser, server.url)
    page.fill("#reviewer", "cora")
    long_reason = "other sounds dominate: a crowd talks over the whole window and a radio plays"
    card(page, DRUM[2]).locator("button.reject").click()
    page.fill("#reject-reason", long_reason)
    page.keyboard.press("Enter")
    card(page, BANJO[0]).locator("button.accept").click()
    expect(card(page, BANJO[0])).to_have_class(word("accepted"))
    line = card(page, DRUM[2]).locator(".decision")
    expect(line).to_have_attribute("title", re.compile(re.escape(long_reason)))
    assert line.evaluate("n => n.scrollWidth <= n.clientWidth && n.getBoundingClientRect().height > 20")  # wraps
    for query in ("", "nomedia=1", "decision=undecided", "flags=flagged", "split=test", "class=Drum"):
        page.goto(f"{server.url}#curate?{query}")
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        shown = cards_by_state(page)
        table = table_counts(page)
        for name, row in table.items():
            if query != "class=Drum" or name == "Drum":
                assert row == shown.get(name, {"accepted": 0, "rejected": 0, "undecided": 0}), (query, name)
        total = sum(sum(v.values()) for v in shown.values())
        expect(page.locator("#curate-summary")).to_contain_text(f"{total} clips match" if total else "No clip")
        for name, counts in shown.items():
            expect(page.locator(f'[data-class-head="{name}"] .tally')).to_contain_text(
                f"{counts['accepted']} accepted · {counts['rejected']} rejected · {counts['undecided']} undecided")
    page.goto(f"{server.url}#curate")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert table_counts(page)["Banjo"]["undecided"] == 2                # the reserve clip without media: not counted
    page.check("#f-nomedia")
    assert table_counts(page)["Banjo"]["undecided"] == 3
    assert page.errors == []
    page.close()
