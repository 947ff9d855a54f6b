// The curation view: filters, per-class counts, and the grid of clip cards.
// One cursor: the active card is the one holding the keyboard focus (or containing it); every key
// acts on it, Tab reaches it and its buttons, the arrows move it, and it carries aria-current.
import { $, decide, decisionState, el, fillSelect, isControl, reviewerName, setStatus, store } from "./util.js";
import { playAudio, stopAudio, toggleAudio } from "./player.js";
import { card, setActive } from "./cards.js";
import { askDecision } from "./conflict.js";
import { History } from "./history.js";
import { RejectDialog } from "./reject.js";

const PAGE = 240;   // cards rendered at once; "Show more" adds the next page
const DEFAULT_FILTERS = { class: "all", split: "all", decision: "all", flags: "any", nomedia: false };
const ARROWS = { ArrowRight: 1, l: 1, ArrowLeft: -1, h: -1 };
const VERTICAL = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 };

function hasMedia(clip) {
  return clip.frame || clip.audio;
}

function tally(clips) {
  const counts = { accepted: 0, rejected: 0, undecided: 0, flagged: 0, maskable: 0, masked: 0, total: 0 };
  for (const clip of clips) {
    counts[decisionState(clip)] += 1;
    counts.total += 1;
    if (clip.flags.length) counts.flagged += 1;
    if (clip.maskable) { counts.maskable += 1; if (clip.masked) counts.masked += 1; }
  }
  return counts;
}

export class Curation {
  constructor() {
    this.filters = { ...DEFAULT_FILTERS };
    this.focus = null;
    this.limit = PAGE;
    this.matching = [];      // ids the filters show (rendered up to `limit`)
    this.listed = [];        // ids the filters other than the class show: the counts table
    this.grid = $("#grid");
    this.reject = new RejectDialog((id, reason) => this.decideAndAdvance(id, "reject", reason));
    this.history = new History((result, entry) => this.afterUndo(result, entry));
    for (const [id, key] of [["#f-class", "class"], ["#f-split", "split"], ["#f-decision", "decision"],
      ["#f-flags", "flags"]]) {
      $(id).addEventListener("change", (event) => this.setFilter(key, event.target.value));
    }
    $("#f-nomedia").addEventListener("change", (event) => this.setFilter("nomedia", event.target.checked));
    $("#more").addEventListener("click", () => { this.limit += PAGE; this.render(); });
    $("#class-counts tbody").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-class]");
      if (row) this.setFilter("class", row.dataset.class === this.filters.class ? "all" : row.dataset.class);
    });
    $("#history-list").addEventListener("click", (event) => {
      const link = event.target.closest("[data-jump]");
      if (!link) return;
      event.preventDefault();
      this.jumpTo(link.dataset.jump);
    });
    this.grid.addEventListener("click", (event) => this.onClick(event));
    this.grid.addEventListener("focusin", (event) => {
      const node = event.target.closest(".card");
      if (node) this.activate(node.dataset.id, false);
    });
    this.grid.addEventListener("pointerover", (event) => this.onHover(event, true));
    this.grid.addEventListener("pointerout", (event) => this.onHover(event, false));
  }

  // ------------------------------------------------------------------ filters and the URL
  applyHash(hash) {
    const params = new URLSearchParams(hash.split("?")[1] || "");
    this.filters = { ...DEFAULT_FILTERS };
    for (const key of ["class", "split", "decision", "flags"]) {
      if (params.has(key)) this.filters[key] = params.get(key);
    }
    this.filters.nomedia = params.get("nomedia") === "1";
    this.limit = PAGE;
    this.refresh();
  }

  setFilter(key, value) {
    this.filters[key] = value;
    this.limit = PAGE;
    const params = new URLSearchParams();
    for (const [name, current] of Object.entries(this.filters)) {
      if (current !== DEFAULT_FILTERS[name]) params.set(name, current === true ? "1" : current);
    }
    const query = params.toString();
    history.replaceState(null, "", query ? `#curate?${query}` : "#curate");
    this.refresh();
  }

  matches(clip, ignoreClass = false) {
    const f = this.filters;
    if (!ignoreClass && f.class !== "all" && clip.class !== f.class) return false;
    if (f.split !== "all" && clip.split !== f.split) return false;
    if (f.decision !== "all" && decisionState(clip) !== f.decision) return false;
    if (f.flags === "flagged" && clip.flags.length === 0) return false;
    if (f.flags === "clean" && clip.flags.length > 0) return false;
    if (!f.nomedia && !hasMedia(clip)) return false;
    return true;
  }

  // ------------------------------------------------------------------ rendering
  refresh() {
    if (!store.state) return;
    const classes = [...store.classes.values()];
    fillSelect($("#f-class"), [["all", "all classes"], ...classes.map((c) => [c.name, c.name])], this.filters.class);
    const splits = [...new Set(store.order.map((id) => store.clips.get(id).split))].sort();
    fillSelect($("#f-split"), [["all", "all splits"], ...splits.map((s) => [s, s])], this.filters.split);
    $("#f-decision").value = this.filters.decision;
    $("#f-flags").value = this.filters.flags;
    $("#f-nomedia").checked = this.filters.nomedia;
    this.filters.class = $("#f-class").value;
    this.filters.split = $("#f-split").value;
    this.render();
  }

  // Every count is over the clips the filters show (the table: all filters but the class), with
  // their decisions as they are now; only "selected / cap" is curate's projection of the class.
  renderCounts() {
    const focusedRow = document.activeElement?.closest?.("#class-counts tr[data-class]")?.dataset.class;
    const byClass = new Map();
    for (const id of this.listed) {
      const clip = store.clips.get(id);
      if (!byClass.has(clip.class)) byClass.set(clip.class, []);
      byClass.get(clip.class).push(clip);
    }
    const rows = [...store.classes.values()].map((c) => {
      const n = tally(byClass.get(c.name) || []);
      const current = c.name === this.filters.class;
      return el("tr", {
        dataset: { class: c.name }, class: [current ? "current" : "", c.short ? "short" : ""].join(" ").trim(),
        title: `${c.name}: ${c.selected} of cap ${c.cap} selected by curate with these decisions; ` +
          `of the ${n.total} clips the filters show, ${n.accepted} accepted, ${n.rejected} rejected, ` +
          `${n.undecided} undecided`,
      }, el("td", {}, el("button", { type: "button", class: "class-pick", "aria-pressed": String(current) }, c.name),
        c.split === "test" ? el("span", { class: "unseen" }, " unseen") : null),
      el("td", { class: "num" }, `${c.selected}/${c.cap}`), el("td", { class: "num" }, n.accepted),
      el("td", { class: "num" }, n.rejected), el("td", { class: "num" }, n.undecided));
    });
    $("#class-counts tbody").replaceChildren(...rows);
    // The table is drawn again after each change: a keyboard user stays on the row they pressed.
    if (focusedRow) $(`#class-counts tr[data-class="${CSS.escape(focusedRow)}"] .class-pick`)?.focus();
    for (const option of $("#f-class").options) {
      const total = option.value === "all" ? this.listed.length : (byClass.get(option.value) || []).length;
      option.textContent = `${option.value === "all" ? "all classes" : option.value} (${total})`;
    }
  }

  classHead(name) {
    const c = store.classes.get(name);
    const n = tally(this.matching.map((id) => store.clips.get(id)).filter((clip) => clip.class === name));
    return el("div", { class: "class-head", dataset: { classHead: name }, role: "presentation" },
      el("h2", {}, name), el("span", { class: "seen" }, c.split === "test" ? "unseen class" : c.split ? "seen class" : ""),
      el("span", { class: c.short ? "cap short" : "cap", title: "selected by curate with these decisions / cap" },
        `${c.selected} / ${c.cap} selected`),
      el("span", { class: "tally" }, `${n.accepted} accepted · ${n.rejected} rejected · ${n.undecided} undecided` +
        (n.flagged ? ` · ${n.flagged} flagged` : "") + (n.maskable ? ` · masks ${n.masked}/${n.maskable}` : "")));
  }

  render() {
    const restore = this.focusInGrid();
    // ids only: a decision replaces the clip's object in the store
    this.matching = store.order.filter((id) => this.matches(store.clips.get(id)));
    this.listed = this.filters.class === "all" ? this.matching
      : store.order.filter((id) => this.matches(store.clips.get(id), true));
    const shown = this.matching.slice(0, this.limit);
    if (!shown.includes(this.focus)) this.focus = shown[0] || null;
    const nodes = [];
    let lastClass = null;
    for (const clip of shown.map((id) => store.clips.get(id))) {
      if (clip.class !== lastClass) {
        nodes.push(this.classHead(clip.class));
        lastClass = clip.class;
      }
      nodes.push(card(clip, clip.id === this.focus));
    }
    this.grid.replaceChildren(...nodes);
    const more = this.matching.length - this.limit;
    $("#more").hidden = more <= 0;
    $("#more").textContent = `Show ${Math.min(more, PAGE)} more (${more} hidden)`;
    this.renderCounts();
    this.renderSummary();
    // Focusing forces a layout of the whole grid at once: leave it to the next frame, unless the
    // reviewer has put the focus somewhere else by then.
    requestAnimationFrame(() => {
      if (!document.activeElement || document.activeElement === document.body) this.restoreFocus(restore);
    });
  }

  renderSummary() {
    const n = tally(this.matching.map((id) => store.clips.get(id)));
    $("#curate-summary").textContent = this.matching.length
      ? `${n.total} clips match · ${n.accepted + n.rejected} decided · ${n.undecided} undecided`
      : "No clip matches these filters.";
  }

  cardOf(id) {
    return id ? this.grid.querySelector(`.card[data-id="${CSS.escape(id)}"]`) : null;
  }

  // Where the keyboard focus is in the grid (card and control), to put it back after redrawing.
  focusInGrid() {
    const active = document.activeElement;
    if (!active || active === document.body) return { id: null, action: null, body: true };
    if (!this.grid.contains(active)) return null;
    const node = active.closest(".card");
    return { id: node?.dataset.id || null, action: active.dataset?.action || null };
  }

  restoreFocus(where) {
    if (!where || document.querySelector("dialog[open]")) return;
    const node = this.cardOf(where.id && this.cardOf(where.id) ? where.id : this.focus);
    if (!node || node.contains(document.activeElement)) return;
    const control = where.action ? node.querySelector(`[data-action="${where.action}"]`) : null;
    (control || node).focus({ preventScroll: true });
  }

  // After a decision: the class's cards (outcomes can move within the class), its header and the counts.
  updateClass(name) {
    const restore = this.focusInGrid();
    for (const node of this.grid.querySelectorAll(".card")) {
      const clip = store.clips.get(node.dataset.id);
      if (clip.class === name) node.replaceWith(card(clip, clip.id === this.focus, node));
    }
    const head = this.grid.querySelector(`[data-class-head="${CSS.escape(name)}"]`);
    if (head) head.replaceWith(this.classHead(name));
    this.renderCounts();
    this.renderSummary();
    this.restoreFocus(restore);
  }

  // Make a card the active one; `moveFocus` also puts the keyboard focus on it (or on its
  // `action` button) and scrolls it into view.
  activate(id, moveFocus, action = null) {
    if (this.focus !== id) {
      const old = this.cardOf(this.focus);
      if (old) setActive(old, false);
      this.focus = id;
    }
    const node = this.cardOf(id);
    if (!node) return;
    setActive(node, true);
    if (!moveFocus) return;
    const control = action ? node.querySelector(`[data-action="${action}"]`) : null;
    const target = control || node;
    if (document.activeElement !== target) target.focus({ preventScroll: true });
    node.scrollIntoView({ block: "nearest" });
  }

  focusActive() {
    this.activate(this.focus, true);
  }

  jumpTo(id) {
    const index = this.matching.indexOf(id);
    if (index < 0) { setStatus(`${id} is hidden by the filters`, true); return; }
    if (index >= this.limit) { this.limit = index + 1; this.render(); }
    this.activate(id, true);
  }

  // ------------------------------------------------------------------ actions
  async decideAndAdvance(id, decision, reason = "", action = null) {
    // Advance at once, not when the server answers: keys pressed in the meantime must act on the
    // clip the reviewer sees focused (a late move raced them and could hit the wrong clip).
    const before = History.current(id);
    if (decision !== "undecided" && this.focus === id && reviewerName()) this.move(1, action);
    const result = await decide(id, decision, reason);
    if (!result) return;
    this.updateClass(store.clips.get(id).class);
    if (result.answer) this.history.record(before, result.answer);
    else await this.settle(result.conflict, { decision, reason, reviewer: reviewerName() });
  }

  // A save refused because someone else changed the clip: show both, keep theirs or write mine.
  async settle(conflict, wanted, entry = null) {
    const id = conflict.clip.id;
    const choice = await askDecision(conflict, wanted);
    if (choice === "theirs") {
      if (entry) this.history.drop(entry);
      setStatus(`kept the other decision of ${id}: ${conflict.clip.decision ? conflict.clip.decision.decision : "undecided"}`);
      return;
    }
    const theirs = conflict.clip.decision ? { ...conflict.clip.decision } : null;
    const result = await decide(id, wanted.decision, wanted.reason,
      { base: conflict.clip.version || "", reviewer: wanted.reviewer, time: wanted.time });
    if (!result) return;
    this.updateClass(store.clips.get(id).class);
    if (result.answer) {
      if (entry) this.history.drop(entry);
      else this.history.record(theirs, result.answer);
    } else {
      await this.settle(result.conflict, wanted, entry);
    }
  }

  async afterUndo(result, entry) {
    if (!result) return;
    this.updateClass(store.clips.get(entry.id).class);
    this.jumpTo(entry.id);
    if (result.conflict) {
      const b = entry.before;
      await this.settle(result.conflict, b ? { ...b } : { decision: "undecided", reason: "", reviewer: "" }, entry);
    }
  }

  onClick(event) {
    const node = event.target.closest(".card");
    if (!node) return;
    const id = node.dataset.id;
    this.activate(id, false);
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "accept") this.decideAndAdvance(id, "accept", "", action);
    else if (action === "reject") this.reject.open(id);
    else if (action === "undecided") this.decideAndAdvance(id, "undecided");
    else if (action === "play") playAudio(id);
    else if (action === "stop") stopAudio();
  }

  onHover(event, entering) {
    if (!$("#hover-play").checked) return;
    const node = event.target.closest(".card");
    if (!node || node.contains(event.relatedTarget)) return;   // moving inside one card
    if (entering) playAudio(node.dataset.id);
    else stopAudio();
  }

  // `action`: keep the focus on that button of the next card (Enter on "Accept" again accepts the next).
  move(step, action = null) {
    const cards = [...this.grid.querySelectorAll(".card")];
    if (!cards.length) return;
    let index = cards.findIndex((node) => node.dataset.id === this.focus);
    index = Math.max(0, Math.min(cards.length - 1, index + step));
    const id = cards[index].dataset.id;
    if (index === cards.length - 1 && step > 0 && this.matching.length > this.limit) {
      this.limit += PAGE;     // reached the end of the rendered page: render the next one
      this.render();
    }
    this.activate(id, true, action);
  }

  // Up / down: the card in the next row whose left edge is nearest (rows differ per class block).
  moveVertical(direction) {
    const current = this.cardOf(this.focus);
    if (!current) return this.move(direction);
    const here = current.getBoundingClientRect();
    let best = null;
    let bestScore = Infinity;
    for (const node of this.grid.querySelectorAll(".card")) {
      const rect = node.getBoundingClientRect();
      const dy = (rect.top - here.top) * direction;
      if (dy <= 4) continue;
      const score = dy * 10000 + Math.abs(rect.left - here.left);
      if (score < bestScore) { best = node; bestScore = score; }
    }
    if (best) this.activate(best.dataset.id, true);
  }

  nextUndecided() {
    const undecided = (id) => !store.clips.get(id).decision;
    const start = this.matching.indexOf(this.focus);
    const next = this.matching.find((id, i) => i > start && undecided(id)) || this.matching.find(undecided);
    if (!next) { setStatus("no undecided clip left under these filters"); return; }
    this.jumpTo(next);
  }

  onKey(event) {
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && key === "z") { event.preventDefault(); this.history.undo(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const inCard = target instanceof Element ? target.closest(".card") : null;
    if (inCard) this.activate(inCard.dataset.id, false);
    // Enter and Space press the focused button or link, as on any page.
    if ((key === "Enter" || key === " ") && isControl(target)) return;
    // The arrows move the cursor from the grid (or from nowhere); elsewhere they are the control's.
    const nowhere = target === document.body || target === this.grid ||
      (target instanceof Element && target.closest("dialog:not([open])"));   // a just-closed dialog's box
    const inGrid = inCard || nowhere;
    const id = this.focus;
    const clip = id ? store.clips.get(id) : null;
    const handled = {
      a: () => clip && this.decideAndAdvance(id, "accept"),
      r: () => clip && this.reject.open(id),
      u: () => clip && clip.decision && this.decideAndAdvance(id, "undecided"),
      z: () => this.history.undo(),
      " ": () => clip && toggleAudio(id),
      n: () => this.nextUndecided(),
      m: () => this.openMask(clip), Enter: () => this.openMask(clip),
    }[key] || (inGrid && ARROWS[key] && (() => this.move(ARROWS[key])))
      || (inGrid && VERTICAL[key] && (() => this.moveVertical(VERTICAL[key])));
    if (!handled) return;
    event.preventDefault();
    handled();
  }

  openMask(clip) {
    if (!clip) return;
    if (!clip.maskable) { setStatus(`${clip.id} is in split ${clip.split}: masks are drawn on test / val_unseen clips`, true); return; }
    location.hash = `#mask/${encodeURIComponent(clip.id)}`;
  }
}
