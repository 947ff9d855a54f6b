// The curation view: filters, per-class counts against the cap, and the grid of clip cards.
import { $, decide, el, fillSelect, playAudio, reviewerName, setStatus, stopAudio, store, toggleAudio } from "./util.js";
import { RejectDialog } from "./reject.js";

const PAGE = 240;   // cards rendered at once; "Show more" adds the next page
const OUTCOME_LABEL = {
  selected: "selected", beyond_cap: "beyond cap", rejected: "out: rejected", no_media: "no media",
  needs_review: "needs review",
};
const DEFAULT_FILTERS = { class: "all", split: "all", decision: "all", flags: "any", nomedia: false };

function decisionState(clip) {
  if (clip.decision) return clip.decision.decision === "accept" ? "accepted" : "rejected";
  return "undecided";
}

function hasMedia(clip) {
  return clip.frame || clip.audio;
}

export class Curation {
  constructor() {
    this.filters = { ...DEFAULT_FILTERS };
    this.focus = null;
    this.limit = PAGE;
    this.matching = [];
    this.grid = $("#grid");
    this.reject = new RejectDialog((id, reason) => this.decideAndAdvance(id, "reject", reason));
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
    this.grid.addEventListener("click", (event) => this.onClick(event));
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

  matches(clip) {
    const f = this.filters;
    if (f.class !== "all" && clip.class !== f.class) return false;
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
    fillSelect($("#f-class"), [["all", `all classes (${classes.length})`],
      ...classes.map((c) => [c.name, `${c.name} (${c.total})`])], this.filters.class);
    const splits = [...new Set(store.order.map((id) => store.clips.get(id).split))].sort();
    fillSelect($("#f-split"), [["all", "all splits"], ...splits.map((s) => [s, s])], this.filters.split);
    $("#f-decision").value = this.filters.decision;
    $("#f-flags").value = this.filters.flags;
    $("#f-nomedia").checked = this.filters.nomedia;
    this.filters.class = $("#f-class").value;
    this.filters.split = $("#f-split").value;
    this.renderCounts();
    this.render();
  }

  renderCounts() {
    const rows = [...store.classes.values()].map((c) => el("tr", {
      dataset: { class: c.name },
      class: [c.name === this.filters.class ? "current" : "", c.short ? "short" : ""].join(" ").trim(),
      title: `${c.name}: ${c.selected} of cap ${c.cap} selected by curate with these decisions; ` +
        `${c.auto_rejected} auto-rejected by flags, ${c.flagged} flagged`,
    }, el("td", {}, c.name, c.split === "test" ? el("span", { class: "unseen" }, " unseen") : null),
    el("td", { class: "num" }, `${c.selected}/${c.cap}`), el("td", { class: "num" }, c.accepted),
    el("td", { class: "num" }, c.rejected), el("td", { class: "num" }, c.undecided)));
    $("#class-counts tbody").replaceChildren(...rows);
  }

  classHead(name) {
    const c = store.classes.get(name);
    return el("div", { class: "class-head", dataset: { classHead: name }, role: "presentation" },
      el("h2", {}, name), el("span", { class: "seen" }, c.split === "test" ? "unseen class" : c.split ? "seen class" : ""),
      el("span", { class: c.short ? "cap short" : "cap" }, `${c.selected} / ${c.cap} selected`),
      el("span", {}, `${c.accepted} accepted · ${c.rejected} rejected · ${c.undecided} undecided` +
        (c.auto_rejected ? ` · ${c.auto_rejected} auto-rejected` : "") +
        (c.maskable ? ` · masks ${c.masked}/${c.maskable}` : "")));
  }

  render() {
    // ids only: a decision replaces the clip's object in the store
    this.matching = store.order.filter((id) => this.matches(store.clips.get(id)));
    const nodes = [];
    let lastClass = null;
    for (const clip of this.matching.slice(0, this.limit).map((id) => store.clips.get(id))) {
      if (clip.class !== lastClass) {
        nodes.push(this.classHead(clip.class));
        lastClass = clip.class;
      }
      nodes.push(this.card(clip));
    }
    this.grid.replaceChildren(...nodes);
    const more = this.matching.length - this.limit;
    $("#more").hidden = more <= 0;
    $("#more").textContent = `Show ${Math.min(more, PAGE)} more (${more} hidden)`;
    this.renderSummary();
    if (!this.cardOf(this.focus)) this.focus = null;
    if (!this.focus && this.matching.length) this.focus = this.matching[0];
    this.showFocus(false);
  }

  renderSummary() {
    const decided = this.matching.filter((id) => store.clips.get(id).decision).length;
    $("#curate-summary").textContent = this.matching.length
      ? `${this.matching.length} clips match · ${decided} decided · ${this.matching.length - decided} undecided`
      : "No clip matches these filters.";
  }

  // `previous`: the card this one replaces; its <img> is reused so no frame is fetched again.
  card(clip, previous = null) {
    const state = decisionState(clip);
    const image = previous?.querySelector(".thumb img") || (clip.frame ? el("img", {
      src: `/media/frame/${encodeURIComponent(clip.id)}`, alt: `frame of ${clip.id}`, loading: "lazy",
      draggable: "false" }) : null);
    const flags = clip.flags.map((flag) => el("span", { class: "flag" }, flag));
    if (clip.fetch_status && clip.fetch_status !== "ok" && !clip.flags.includes(clip.fetch_status)) {
      flags.push(el("span", { class: "flag" }, `fetch: ${clip.fetch_status}`));
    }
    const d = clip.decision;
    const decisionLine = d
      ? el("p", { class: `decision ${state}` }, d.decision === "accept" ? "✓ accepted" : "✗ rejected",
        d.reason ? `: ${d.reason}` : "", el("span", { class: "who" }, ` — ${d.reviewer}`))
      : el("p", { class: "decision undecided" }, "undecided");
    const mask = clip.maskable
      ? el("a", { class: clip.masked ? "mask-link done" : "mask-link", href: `#mask/${encodeURIComponent(clip.id)}`,
        title: "draw the instrument mask (m)" }, clip.masked ? "mask ✓" : "✎ draw mask")
      : null;
    return el("article", { class: `card ${state}`, dataset: { id: clip.id }, role: "listitem",
      "aria-label": `${clip.id} ${state}` },
    el("div", { class: "thumb" },
      image || el("div", { class: "noframe" }, "no frame"), mask,
      el("span", { class: `outcome ${clip.outcome}` }, OUTCOME_LABEL[clip.outcome] || clip.outcome),
      clip.audio ? el("button", { class: "play", type: "button", dataset: { action: "play" },
        title: "play / pause the audio (Space)" }, "▶") : el("span", { class: "play none" }, "no audio")),
    el("p", { class: "meta" }, el("code", {}, clip.id)),
    el("p", { class: "meta" }, `${clip.split} · rank ${clip.rank}` +
      (clip.start !== null ? ` · ${clip.start.toFixed(1)}–${clip.end.toFixed(1)} s` : "")),
    el("div", { class: "flags" }, flags),
    decisionLine,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "accept", dataset: { action: "accept" }, title: "accept (a)" },
        "✓ Accept"),
      el("button", { type: "button", class: "reject", dataset: { action: "reject" }, title: "reject with a reason (r)" },
        "✗ Reject"),
      d ? el("button", { type: "button", class: "clear", dataset: { action: "undecided" },
        title: "back to undecided (u)" }, "↺") : null));
  }

  cardOf(id) {
    return id ? this.grid.querySelector(`.card[data-id="${CSS.escape(id)}"]`) : null;
  }

  // After a decision: the class's cards (outcomes can move within the class), its header and the table.
  updateClass(name) {
    for (const node of this.grid.querySelectorAll(".card")) {
      const clip = store.clips.get(node.dataset.id);
      if (clip.class === name) node.replaceWith(this.card(clip, node));
    }
    const head = this.grid.querySelector(`[data-class-head="${CSS.escape(name)}"]`);
    if (head) head.replaceWith(this.classHead(name));
    this.renderCounts();
    this.renderSummary();
    this.showFocus(false);
  }

  showFocus(scroll = true) {
    for (const node of this.grid.querySelectorAll(".card.focused")) node.classList.remove("focused");
    const node = this.cardOf(this.focus);
    if (!node) return;
    node.classList.add("focused");
    if (scroll) node.scrollIntoView({ block: "nearest" });
  }

  // ------------------------------------------------------------------ actions
  async decideAndAdvance(id, decision, reason = "") {
    // Advance at once, not when the server answers: keys pressed in the meantime must act on the
    // clip the reviewer sees focused (a late move raced them and could hit the wrong clip).
    if (decision !== "undecided" && this.focus === id && reviewerName()) this.move(1);
    const answer = await decide(id, decision, reason);
    if (answer) this.updateClass(answer.clip.class);
  }

  onClick(event) {
    const node = event.target.closest(".card");
    if (!node) return;
    const id = node.dataset.id;
    this.focus = id;
    this.showFocus(false);
    const action = event.target.closest("[data-action]")?.dataset.action;
    if (action === "accept") this.decideAndAdvance(id, "accept");
    else if (action === "reject") this.reject.open(id);
    else if (action === "undecided") this.decideAndAdvance(id, "undecided");
    else if (action === "play") toggleAudio(id);
  }

  onHover(event, entering) {
    if (!$("#hover-play").checked) return;
    const node = event.target.closest(".card");
    if (!node || node.contains(event.relatedTarget)) return;   // moving inside one card
    if (entering) playAudio(node.dataset.id);
    else stopAudio();
  }

  move(step) {
    const cards = [...this.grid.querySelectorAll(".card")];
    if (!cards.length) return;
    let index = cards.findIndex((node) => node.dataset.id === this.focus);
    index = Math.max(0, Math.min(cards.length - 1, index + step));
    if (index === cards.length - 1 && step > 0 && this.matching.length > this.limit) {
      this.limit += PAGE;     // reached the end of the rendered page: render the next one
      this.render();
    }
    this.focus = cards[index].dataset.id;
    this.showFocus();
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
    if (best) { this.focus = best.dataset.id; this.showFocus(); }
  }

  nextUndecided() {
    const undecided = (id) => !store.clips.get(id).decision;
    const start = this.matching.indexOf(this.focus);
    const next = this.matching.find((id, i) => i > start && undecided(id)) || this.matching.find(undecided);
    if (!next) { setStatus("no undecided clip left under these filters"); return; }
    const index = this.matching.indexOf(next);
    if (index >= this.limit) { this.limit = index + 1; this.render(); }
    this.focus = next;
    this.showFocus();
  }

  onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const id = this.focus;
    const clip = id ? store.clips.get(id) : null;
    const key = event.key;
    const handled = {
      ArrowRight: () => this.move(1), l: () => this.move(1), ArrowLeft: () => this.move(-1), h: () => this.move(-1),
      ArrowDown: () => this.moveVertical(1), j: () => this.moveVertical(1),
      ArrowUp: () => this.moveVertical(-1), k: () => this.moveVertical(-1),
      a: () => clip && this.decideAndAdvance(id, "accept"),
      r: () => clip && this.reject.open(id),
      u: () => clip && clip.decision && this.decideAndAdvance(id, "undecided"),
      " ": () => clip && toggleAudio(id),
      n: () => this.nextUndecided(),
      m: () => this.openMask(clip), Enter: () => this.openMask(clip),
    }[key];
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
