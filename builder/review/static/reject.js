// The reject dialog: a reason is required (curate refuses a rejection without one).
// 1-6 picks a listed reason while the text box is empty; otherwise type one and press Enter.
import { $, el, store } from "./util.js";

export class RejectDialog {
  constructor(onReject) {
    this.onReject = onReject;
    this.dialog = $("#reject-dialog");
    this.input = $("#reject-reason");
    this.clipId = null;
    $("#reject-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(this.input.value.trim());
    });
    $("#reject-cancel").addEventListener("click", () => this.dialog.close());
    // Esc closes the dialog: hand the keys back to the page at once (see isTyping).
    this.dialog.addEventListener("cancel", () => this.input.blur());
    $("#reject-reasons").addEventListener("click", (event) => {
      const item = event.target.closest("[data-reason]");
      if (item) this.submit(item.dataset.reason);
    });
    this.input.addEventListener("keydown", (event) => {
      const reasons = store.state.reject_reasons;
      const index = Number(event.key) - 1;
      // An empty box, or the earlier reason still wholly selected as it was opened: 1-6 pick a reason.
      const untouched = this.input.value === "" ||
        (this.input.selectionStart === 0 && this.input.selectionEnd === this.input.value.length);
      if (untouched && /^[1-9]$/.test(event.key) && index < reasons.length) {
        event.preventDefault();
        this.submit(reasons[index]);
      }
    });
  }

  open(clipId) {
    this.clipId = clipId;
    $("#reject-clip").textContent = clipId;
    $("#reject-error").textContent = "";
    const current = store.clips.get(clipId)?.decision;
    this.input.value = current && current.decision === "reject" ? current.reason : "";
    $("#reject-reasons").replaceChildren(...store.state.reject_reasons.map((reason, i) =>
      el("li", {}, el("button", { type: "button", dataset: { reason } }, el("kbd", {}, String(i + 1)), ` ${reason}`))));
    this.dialog.showModal();
    this.input.focus();
    this.input.select();
  }

  submit(reason) {
    if (!reason) {
      $("#reject-error").textContent = "A rejection needs a reason: press 1–6 or type one.";
      return;
    }
    this.input.blur();
    this.dialog.close();
    this.onReject(this.clipId, reason);
  }
}
