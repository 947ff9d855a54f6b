// Entry point of the review page: loads /api/state, routes #curate / #mask/<clip_id>, dispatches keys.
import { $, dialogOpen, fetchState, isTyping, loadState, setStatus, stopAudio, store } from "./util.js";
import { Curation } from "./curate.js";
import { Masks } from "./masks.js";

const REVIEWER_KEY = "llinet-review-reviewer";
let lastCurateHash = "#curate";
let view = null;

const curation = new Curation();
const masks = new Masks(() => { location.hash = lastCurateHash; });

async function refresh() {
  try {
    loadState(await fetchState());
  } catch (error) {
    setStatus(`cannot load the clips: ${error.message}`, true);
    return;
  }
  const files = store.state.files;
  $("#help-files").textContent = `Decisions: ${files.decisions} · masks: ${files.annotations} · ` +
    `manifest: ${files.manifest}` + (store.state.ignored_decisions
    ? ` · ${store.state.ignored_decisions} decision(s) in the file are for clips outside this manifest (kept)` : "");
  if (view === "masks") masks.refresh();
  else curation.refresh();
}

function route() {
  const hash = location.hash || "#curate";
  const isMask = hash.startsWith("#mask");
  view = isMask ? "masks" : "curate";
  $("#curate-view").hidden = isMask;
  $("#mask-view").hidden = !isMask;
  $("#tab-curate").classList.toggle("active", !isMask);
  $("#tab-masks").classList.toggle("active", isMask);
  document.body.dataset.view = view;
  stopAudio();
  if (!store.state) return;
  if (isMask) {
    masks.refresh();
    masks.open(hash);
  } else {
    lastCurateHash = hash;
    curation.applyHash(hash);
  }
}

function onKey(event) {
  if (dialogOpen() || isTyping(event)) return;
  if (event.key === "?") {
    event.preventDefault();
    $("#help-dialog").showModal();
    return;
  }
  if (view === "masks") masks.onKey(event);
  else curation.onKey(event);
}

async function start() {
  const reviewer = $("#reviewer");
  reviewer.addEventListener("input", () => localStorage.setItem(REVIEWER_KEY, reviewer.value.trim()));
  // Enter or Esc in the name box hands the keys back to the grid.
  reviewer.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === "Escape") reviewer.blur();
  });
  $("#help-button").addEventListener("click", () => $("#help-dialog").showModal());
  document.addEventListener("keydown", onKey);
  // A clicked button keeps the focus, and Space / Enter would press it again on top of the shortcut.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button && !button.closest("dialog")) button.blur();
  });
  // Likewise a filter or slider that was just changed gives the keys back to the page.
  document.addEventListener("change", (event) => {
    if (event.target.matches("select, input[type=checkbox], input[type=range]")) event.target.blur();
  });
  window.addEventListener("hashchange", route);
  // Another tab or a script may have written decisions or masks: reload them when this tab comes back.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  await refresh();
  reviewer.value = localStorage.getItem(REVIEWER_KEY) || store.state?.reviewer || "";
  route();
  document.body.dataset.ready = "true";
}

start();
