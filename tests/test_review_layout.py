"""The review page's layout in headless Chromium: at 800x800 and on a wide screen every control is inside
the window (the mask editor's canvas, tools and save state without scrolling), text contrast is at least
4.5:1, and the mask editor zooms and pans (a polygon drawn on a zoomed view lands where it was drawn).
Screenshots are kept under the printed temp dir."""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page, expect
from pycocotools.coco import COCO

from support.browser import card, open_page, word
from support.review import FRAME_SIDE, clip_id

BANJO = [clip_id("Banjo", i) for i in range(4)]
DRUM = [clip_id("Drum", i) for i in range(4)]
TABLA = [clip_id("Tabla", i) for i in range(4)]


CONTRAST = """(root) => {
  const parse = (c) => {
    const p = c.match(/[\\d.]+/g).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const lum = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((under, layer) => over(layer, under), [255, 255, 255, 1]);
  };
  const bad = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.querySelector(root), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode;
    const node = text.parentElement;
    if (!text.data.trim() || node.closest("[hidden], dialog:not([open]), :disabled, option, select")) continue;
    const box = node.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(node).visibility === "hidden") continue;
    const bg = background(node);
    const fg = over(parse(getComputedStyle(node).color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    checked += 1;
    if (ratio < 4.5) bad.push(`${ratio.toFixed(2)}:1 <${node.tagName.toLowerCase()} class="${node.className}"> ` +
                              JSON.stringify(text.data.trim().slice(0, 40)));
  }
  return { bad, checked };
}"""


def controls_outside(page: Page, root: str, vertical: bool) -> list[str]:
    """Visible controls of ``root`` not wholly inside the viewport (horizontally; also vertically if asked)."""
    return page.evaluate("""([root, vertical]) => {
        const W = innerWidth, H = innerHeight, out = [];
        for (const n of document.querySelectorAll(`${root} :is(button, input, select, a[href], canvas, audio,
                                                             #mask-info, #mask-title, .card)`)) {
          const r = n.getBoundingClientRect();
          if (!r.width || n.closest('[hidden], dialog:not([open])')) continue;
          // ...and not hidden under something else (the sticky top bar): its centre is its own
          const x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2, hit = document.elementFromPoint(x, y);
          const covered = vertical && !(hit && (n.contains(hit) || hit.contains(n)));
          if (covered || r.left < -0.5 || r.right > W + 0.5 || (vertical && (r.top < -0.5 || r.bottom > H + 0.5)))
            out.push(`${n.tagName} #${n.id} .${n.className} ${Math.round(r.left)}..${Math.round(r.right)} x ` +
                     `${Math.round(r.top)}..${Math.round(r.bottom)}`);
        }
        return out; }""", [root, vertical])


@pytest.mark.parametrize("size", [(800, 800), (1600, 1000)], ids=["800x800", "1600x1000"])
def test_layout_fits_the_window_with_zoom_and_pan(browser, served, shots, size):
    server, root = served
    width, height = size
    page = open_page(browser, server.url, viewport={"width": width, "height": height})
    page.fill("#reviewer", "cora")
    card(page, BANJO[0]).locator("button.accept").click()
    card(page, DRUM[1]).locator("button.reject").click()
    page.locator("#reject-reasons button").first.click()
    expect(card(page, DRUM[1])).to_have_class(word("rejected"))
    page.keyboard.press("Escape")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert controls_outside(page, "#curate-view", vertical=False) == []
    assert controls_outside(page, ".topbar", vertical=True) == []
    result = page.evaluate(CONTRAST, "body")
    assert result["checked"] > 100 and result["bad"] == [], result["bad"]
    page.screenshot(path=str(shots / f"curation_{width}.png"))

    page.goto(f"{server.url}#mask/{TABLA[1]}")
    canvas = page.locator("#mask-canvas")
    expect(page.locator("#mask-title")).to_contain_text(TABLA[1])
    page.wait_for_function("() => document.querySelector('#mask-canvas').getBoundingClientRect().width > 200")
    assert controls_outside(page, ".mask-content", vertical=True) == []    # canvas, tools, save state: all in view
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = canvas.bounding_box()
    assert box["width"] >= (0.45 if width < 1000 else 0.4) * min(width, height)   # the canvas scales to the window
    result = page.evaluate(CONTRAST, "#mask-view")
    assert result["bad"] == [], result["bad"]
    page.keyboard.press("+")
    page.keyboard.press("+")
    expect(canvas).to_have_attribute("data-zoom", "2.25")
    page.keyboard.press("ArrowRight")                                    # pan a quarter of the view
    x0, y0, view_w, view_h = (float(v) for v in canvas.get_attribute("data-view").split(","))
    assert view_w == pytest.approx(FRAME_SIDE / 2.25, abs=0.01)
    assert x0 == pytest.approx(FRAME_SIDE / 2 - view_w / 2 + view_w / 4, abs=0.02)
    box = canvas.bounding_box()
    for fx, fy in ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.keyboard.press("Enter")
    page.keyboard.press("s")
    expect(canvas).to_have_attribute("data-dirty", "false")
    page.screenshot(path=str(shots / f"mask_{width}.png"))
    coco = COCO(str(root / "annotations.json"))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    ys, xs = np.nonzero(coco.annToMask(ann))
    # drawn on the zoomed, panned view: the mask lies where that view showed the frame
    near = pytest.approx
    assert (xs.min(), xs.max()) == (near(x0 + view_w / 4, abs=1.5), near(x0 + 3 * view_w / 4, abs=1.5))
    assert (ys.min(), ys.max()) == (near(y0 + view_h / 4, abs=1.5), near(y0 + 3 * view_h / 4, abs=1.5))
    page.keyboard.press("0")
    expect(canvas).to_have_attribute("data-zoom", "1")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -100)                                            # the wheel zooms at the pointer
    expect(canvas).to_have_attribute("data-zoom", "1.5")
    assert page.errors == []
    page.close()
