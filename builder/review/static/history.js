// The reviewer's decisions since the page was opened, newest first, each one undoable in turn:
// an undo writes back what the clip held before (its decision, reason, reviewer and time), based
// on the version this page's action left, so it never silently undoes someone else's later change.
import { $, decide, describeDecision, el, store } from "./util.js";

const SHOWN = 50;

export class History {
  // onUndone(result, entry): called with decide()'s result after each undo attempt.
  constructor(onUndone) {
    this.entries = [];
    this.onUndone = onUndone;
    this.busy = false;
    $("#history-undo").addEventListener("click", () => this.undo());
  }

  record(before, answer) {
    const clip = answer.clip;
    this.entries.push({ id: clip.id, before, after: clip.decision, version: clip.version || "" });
    this.render();
  }

  render() {
    const items = this.entries.slice(-SHOWN).reverse().map((entry, i) => el("li", { dataset: { id: entry.id } },
      el("a", { href: "#", dataset: { jump: entry.id }, title: "show this clip" }, el("code", {}, entry.id)),
      ` ${describeDecision(entry.after)}`, i === 0 ? el("span", { class: "next-undo" }, " ← z undoes") : null));
    $("#history-list").replaceChildren(...items);
    $("#history-undo").disabled = this.entries.length === 0 || this.busy;
    $("#history-count").textContent = String(this.entries.length);
  }

  async undo() {
    const entry = this.entries.at(-1);
    if (!entry || this.busy) return null;
    this.busy = true;
    this.render();
    const before = entry.before;
    try {
      const result = await decide(entry.id, before ? before.decision : "undecided", before?.reason || "", {
        base: entry.version, reviewer: before ? before.reviewer : "", time: before?.time || undefined });
      if (result?.answer) this.entries.pop();
      await this.onUndone(result, entry);
      return result;
    } finally {
      this.busy = false;
      this.render();
    }
  }

  // After a conflict the reviewer chose to keep the other change: this entry cannot be undone.
  drop(entry) {
    const index = this.entries.lastIndexOf(entry);
    if (index >= 0) this.entries.splice(index, 1);
    this.render();
  }

  // The clip's decision as this page knows it, for recording an action's "before".
  static current(id) {
    const decision = store.clips.get(id)?.decision;
    return decision ? { ...decision } : null;
  }
}
