// The mask view: the list of test / val_unseen clips, the editor's toolbar and its keys.
import { $, el, fillSelect, setStatus, store, toggleAudio } from "./util.js";
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
      if (item) location.hash = `#mask/${encodeURIComponent(item.dataset.id)}`;
    });
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
    }, el("span", { class: "tick" }, clip.masked ? "✓" : "·"), el("code", {}, clip.id), el("span", { class: "cls" }, clip.class))));
    const done = clips.filter((clip) => clip.masked).length;
    $("#mask-progress").textContent = `${done} of ${clips.length} listed clips have a mask`;
    $("#mask-list .current")?.scrollIntoView({ block: "nearest" });
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
      const clip = store.clips.get(id);
      $("#mask-title").textContent = `${info.class} · ${id}`;
      const decision = clip?.decision ? `${clip.decision.decision}ed by ${clip.decision.reviewer}` : "undecided";
      $("#mask-meta").textContent = `${info.split} · ${info.width}×${info.height} px · ${decision}` +
        (info.note ? ` · ${info.note}` : "");
      this.renderList();
    } catch (error) {
      setStatus(`cannot open ${id}: ${error.message}`, true);
    }
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
    }
    this.editor.draw();
  }

  toggleErase() {
    this.editor.erase = !this.editor.erase;
    $("#t-erase").classList.toggle("active", this.editor.erase);
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

  async save() {
    if (!this.current) return;
    try {
      const answer = await this.editor.save();
      this.markMasked(this.current, true);
      setStatus(`saved mask of ${this.current}: ${answer.area} px`);
    } catch (error) {
      setStatus(`not saved: ${error.message}`, true);
    }
  }

  async remove() {
    if (!this.current || !window.confirm(`Delete the saved mask of ${this.current}?`)) return;
    try {
      await this.editor.remove();
      this.markMasked(this.current, false);
      setStatus(`deleted the mask of ${this.current}`);
    } catch (error) {
      setStatus(`not deleted: ${error.message}`, true);
    }
  }

  markMasked(id, masked) {
    const clip = store.clips.get(id);
    if (clip && clip.masked !== masked) {
      clip.masked = masked;
      const cls = store.classes.get(clip.class);
      if (cls) cls.masked += masked ? 1 : -1;
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
    const action = {
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
