// The mask view: the list of test / val_unseen clips, the editor's toolbar and its keys.
import { $, el, fillSelect, setStatus, store } from "./util.js";
import { toggleAudio } from "./player.js";
import { askMask } from "./conflict.js";
import { MaskEditor } from "./mask_editor.js";

export class Masks {
  constructor(goToGrid) {
    this.goToGrid = goToGrid;
    this.current = null;
    this.editor = new MaskEditor($("#mask-canvas"), (editor, area) => this.showInfo(editor, area));
    this.filters = { class: "all", show: "all", reserve: false };
    $("#m-class").addEventListener("change", (e) => { this.filters.class = e.target.value; this.renderList(); });
    $("#m-show").addEventListener("change", (e) => { this.filters.show = e.target.value; this.renderList(); });
    $("#m-reserve").addEventListener("change", (e) => { this.filters.reserve = e.target.checked; this.renderList(); });
    $("#mask-list").addEventListener("click", (event) => {
      const item = event.target.closest("[data-id]");
      if (item && !event.target.closest("a")) location.hash = `#mask/${encodeURIComponent(item.dataset.id)}`;
    });
    $("#t-zoom-in").addEventListener("click", () => this.editor.zoomIn());
    $("#t-zoom-out").addEventListener("click", () => this.editor.zoomOut());
    $("#t-fit").addEventListener("click", () => this.editor.fit());
    for (const button of document.querySelectorAll("[data-tool]")) {
      button.addEventListener("click", () => this.setTool(button.dataset.tool));
    }
    $("#t-erase").addEventListener("click", () => this.toggleErase());
    $("#t-size").addEventListener("input", (e) => this.setBrush(Number(e.target.value)));
    $("#t-undo").addEventListener("click", () => this.editor.undo());
    $("#t-clear").addEventListener("click", () => this.editor.clear());
    $("#t-save").addEventListener("click", () => this.save());
    $("#t-delete").addEventListener("click", () => this.remove());
    $("#mask-prev").addEventListener("click", () => this.go(-1));
    $("#mask-next").addEventListener("click", () => this.go(1));
    $("#mask-play").addEventListener("click", () => this.current && toggleAudio(this.current));
    window.addEventListener("beforeunload", (event) => { if (this.editor.dirty) event.preventDefault(); });
    this.setTool("polygon");
    this.setBrush(8);
  }

  // Clips of the masked splits; by default only those curate would select with the current decisions.
  candidates() {
    const f = this.filters;
    return store.order.map((id) => store.clips.get(id)).filter((clip) => clip.maskable &&
      (f.reserve || clip.outcome === "selected") && (f.class === "all" || clip.class === f.class) &&
      (f.show === "all" || (f.show === "done") === clip.masked));
  }

  refresh() {
    if (!store.state) return;
    const names = [...new Set(store.order.map((id) => store.clips.get(id)).filter((c) => c.maskable).map((c) => c.class))];
    fillSelect($("#m-class"), [["all", "all classes"], ...names.map((n) => [n, n])], this.filters.class);
    this.filters.class = $("#m-class").value;
    this.renderList();
  }

  renderList() {
    const clips = this.candidates();
    $("#mask-list").replaceChildren(...clips.map((clip) => el("li", {
      dataset: { id: clip.id }, class: [clip.masked ? "done" : "", clip.id === this.current ? "current" : ""].join(" ").trim(),
    }, el("a", { href: `#mask/${encodeURIComponent(clip.id)}`, "aria-current": clip.id === this.current ? "true" : null },
      el("span", { class: "tick", "aria-label": clip.masked ? "has a mask" : "no mask yet" }, clip.masked ? "✓" : "·"),
      el("code", {}, clip.id), el("span", { class: "cls" }, clip.class)))));
    const done = clips.filter((clip) => clip.masked).length;
    $("#mask-progress").textContent = `${done} of ${clips.length} listed clips have a mask`;
    // Scroll the list only: scrollIntoView would also move the window (the list is below the editor
    // on narrow screens) and push the canvas and its tools out of view.
    const list = $("#mask-list");
    const item = $("#mask-list .current");
    if (item) {
      const top = item.offsetTop - list.offsetTop;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + item.offsetHeight > list.scrollTop + list.clientHeight) {
        list.scrollTop = top + item.offsetHeight - list.clientHeight;
      }
    }
  }

  async open(hash) {
    let id = hash.startsWith("#mask/") ? decodeURIComponent(hash.slice("#mask/".length)) : null;
    if (!id) {
      id = this.current || this.candidates()[0]?.id;
      if (!id) { this.renderList(); return; }
      history.replaceState(null, "", `#mask/${encodeURIComponent(id)}`);
    }
    if (id === this.current) { this.renderList(); return; }
    if (this.editor.dirty && !window.confirm(`Discard the unsaved mask of ${this.current}?`)) {
      history.replaceState(null, "", `#mask/${encodeURIComponent(this.current)}`);
      return;
    }
    try {
      const info = await this.editor.load(id);
      this.current = id;
      this.showMeta(id, info);
      this.renderList();
    } catch (error) {
      setStatus(`cannot open ${id}: ${error.message}`, true);
    }
  }

  showMeta(id, info) {
    const clip = store.clips.get(id);
    $("#mask-title").textContent = `${info.class} · ${id}`;
    const decision = clip?.decision ? `${clip.decision.decision}ed by ${clip.decision.reviewer}` : "undecided";
    $("#mask-meta").textContent = `${info.split} · ${info.width}×${info.height} px · ${decision}` +
      (info.note ? ` · ${info.note}` : "");
  }

  showInfo(editor, area) {
    const state = editor.dirty ? "unsaved changes" : (editor.saved ? "saved" : "no mask yet");
    $("#mask-info").textContent = `mask: ${area} px (${(100 * area / (editor.width * editor.height || 1)).toFixed(1)} %) · ${state}`;
    $("#mask-info").classList.toggle("dirty", editor.dirty);
  }

  setTool(tool) {
    this.editor.tool = tool;
    if (tool !== "polygon") this.editor.cancelPolygon();
    for (const button of document.querySelectorAll("[data-tool]")) {
      button.classList.toggle("active", button.dataset.tool === tool);
      button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
    }
    this.editor.canvas.dataset.tool = tool;
    this.editor.draw();
  }

  toggleErase() {
    this.editor.erase = !this.editor.erase;
    $("#t-erase").classList.toggle("active", this.editor.erase);
    $("#t-erase").setAttribute("aria-pressed", String(this.editor.erase));
    this.editor.draw();
  }

  setBrush(radius) {
    this.editor.brushRadius = Math.max(1, Math.min(64, radius));
    $("#t-size").value = String(this.editor.brushRadius);
    $("#t-size-value").textContent = `${this.editor.brushRadius} px`;
  }

  go(step) {
    const clips = this.candidates();
    const index = clips.findIndex((clip) => clip.id === this.current);
    const next = clips[index + step];
    if (next) location.hash = `#mask/${encodeURIComponent(next.id)}`;
    else setStatus(step > 0 ? "last clip of the list" : "first clip of the list");
  }

  // base: the mask version the drawing replaces; a 409 asks whether to load theirs or save mine.
  async save(base = undefined) {
    if (!this.current) return;
    const id = this.current;
    try {
      const answer = await this.editor.save(base);
      this.markMasked(id, true, answer.version);
      setStatus(`saved mask of ${id}: ${answer.area} px`);
    } catch (error) {
      if (error.status !== 409 || !error.data?.conflict) { setStatus(`not saved: ${error.message}`, true); return; }
      await this.settle(error.data.conflict, this.editor.area(), () => this.save(error.data.conflict.version));
    }
  }

  async remove(base = undefined) {
    if (!this.current || (base === undefined && !window.confirm(`Delete the saved mask of ${this.current}?`))) return;
    const id = this.current;
    try {
      await this.editor.remove(base);
      this.markMasked(id, false, "");
      setStatus(`deleted the mask of ${id}`);
    } catch (error) {
      if (error.status !== 409 || !error.data?.conflict) { setStatus(`not deleted: ${error.message}`, true); return; }
      await this.settle(error.data.conflict, null, () => this.remove(error.data.conflict.version));
    }
  }

  async settle(conflict, mineArea, writeMine) {
    setStatus(`not saved: someone else changed the mask of ${conflict.clip_id}`, true);
    this.markMasked(conflict.clip_id, conflict.masked, conflict.version);
    const choice = await askMask(conflict, mineArea);
    if (choice === "mine") return writeMine();
    this.editor.dirty = false;
    await this.reload(conflict.clip_id);
    setStatus(`loaded the other mask of ${conflict.clip_id}`);
  }

  async reload(id) {
    const info = await this.editor.load(id);
    this.showMeta(id, info);
  }

  // Other pages' saves (from sync.js): the list follows; the open clip reloads unless it has unsaved edits.
  onChanges(news) {
    this.renderList();
    const changed = news.find((clip) => clip.id === this.current);
    if (!changed || (changed.mask_version || "") === this.editor.version) return;
    if (this.editor.dirty) {
      setStatus(`someone else changed the mask of ${this.current}; saving will ask whose to keep`, true);
    } else {
      this.reload(this.current).catch((error) => setStatus(`cannot reload ${this.current}: ${error.message}`, true));
    }
  }

  markMasked(id, masked, version) {
    const clip = store.clips.get(id);
    if (clip && clip.masked !== masked) {
      const cls = store.classes.get(clip.class);
      if (cls) cls.masked += masked ? 1 : -1;
    }
    if (clip) {
      clip.masked = masked;
      clip.mask_version = version;
    }
    this.renderList();
  }

  onKey(event) {
    const key = event.key;
    const ctrl = event.ctrlKey || event.metaKey;
    if (ctrl && (key === "s" || key === "z")) {
      event.preventDefault();
      return key === "s" ? this.save() : this.editor.undo();
    }
    if (ctrl || event.altKey) return;
    // Enter and Space press a focused button or link; arrows belong to a focused slider.
    const target = event.target;
    if ((key === "Enter" || key === " ") && target instanceof Element && target.matches("button, a[href], input")) return;
    if (key.startsWith("Arrow") && target instanceof HTMLInputElement) return;
    const pan = { ArrowLeft: [-0.25, 0], ArrowRight: [0.25, 0], ArrowUp: [0, -0.25], ArrowDown: [0, 0.25] }[key];
    const action = pan ? () => this.editor.pan(...pan) : {
      "+": () => this.editor.zoomIn(), "=": () => this.editor.zoomIn(), "-": () => this.editor.zoomOut(),
      0: () => this.editor.fit(), v: () => this.setTool("pan"),
      p: () => this.setTool("polygon"), b: () => this.setTool("brush"), e: () => this.toggleErase(),
      "[": () => this.setBrush(this.editor.brushRadius - (this.editor.brushRadius > 8 ? 4 : 1)),
      "]": () => this.setBrush(this.editor.brushRadius + (this.editor.brushRadius >= 8 ? 4 : 1)),
      z: () => this.editor.undo(), c: () => this.editor.clear(), s: () => this.save(),
      Enter: () => this.editor.closePolygon(), Escape: () => this.editor.cancelPolygon(),
      Backspace: () => this.editor.dropPoint(), ",": () => this.go(-1), ".": () => this.go(1),
      " ": () => this.current && toggleAudio(this.current), g: () => this.goToGrid(),
    }[key];
    if (!action) return;
    event.preventDefault();
    action();
  }
}
