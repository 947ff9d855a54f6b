// Entry point of the review page: loads /api/state, routes #curate / #mask/<clip_id>, dispatches keys.
import { $, dialogOpen, fetchState, isTyping, loadState, setStatus, store } from "./util.js";
import { stopAudio } from "./player.js";
import { Curation } from "./curate.js";
import { Masks } from "./masks.js";
import { startSync } from "./sync.js";

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
  const previous = view;
  view = isMask ? "masks" : "curate";
  $("#curate-view").hidden = isMask;
  $("#mask-view").hidden = !isMask;
  $("#tab-curate").classList.toggle("active", !isMask);
  $("#tab-masks").classList.toggle("active", isMask);
  document.body.dataset.view = view;
  stopAudio();
  if (!store.state) return;
  if (isMask) {
    if (view !== previous) window.scrollTo(0, 0);     // the editor's canvas is sized to the window below its top
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
  // A filter that was just changed hands the keys back: in the grid to the active card (the one
  // the shortcuts act on), in the mask view to the page.
  document.addEventListener("change", (event) => {
    if (!event.target.matches("select, input[type=checkbox], input[type=range]")) return;
    if (view === "curate" && event.target.closest("#curate-view")) curation.focusActive();
    else event.target.blur();
  });
  window.addEventListener("hashchange", route);
  await refresh();
  // Other tabs, reviewers and scripts: their changes show up within a few seconds while this tab is visible.
  startSync({
    onReload: refresh,
    onChanges: (data, news) => {
      for (const name of new Set(data.clips.map((clip) => clip.class))) curation.updateClass(name);
      if (view === "masks") masks.onChanges(news);
    },
  });
  reviewer.value = localStorage.getItem(REVIEWER_KEY) || store.state?.reviewer || "";
  route();
  document.body.dataset.ready = "true";
}

start();
