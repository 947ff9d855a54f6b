// One clip card of the curation grid: frame, waveform strip with the audio window, flags,
// the decision and its buttons. Styles that depend on data are set through the CSSOM (the page's
// Content-Security-Policy forbids style attributes).
import { decisionState, describeDecision, el, segmentSeconds, windowText } from "./util.js";
import { markPlaying } from "./player.js";

const OUTCOME_LABEL = {
  selected: "selected", beyond_cap: "beyond cap", rejected: "out: rejected", no_media: "no media",
  needs_review: "needs review",
};

function strip(clip, previous) {
  const duration = segmentSeconds(clip);
  const image = previous?.querySelector(".strip img") || el("img", {
    src: `/media/strip/${encodeURIComponent(clip.id)}`, loading: "lazy", draggable: "false",
    alt: `waveform of the ${duration ? `${duration} s ` : ""}segment`,
    onerror: (event) => event.target.classList.add("missing"),
  });
  const windowBox = el("div", { class: "window", title: `audio window ${windowText(clip)}` });
  if (clip.window && duration) {
    windowBox.style.left = `${(100 * clip.window[0]) / duration}%`;
    windowBox.style.width = `${(100 * clip.window[1]) / duration}%`;
  } else {
    windowBox.hidden = true;
  }
  return el("div", { class: "strip" }, image, windowBox);   // the playhead is added while it plays
}

// `previous`: the card this one replaces; its images are reused so nothing is fetched again.
export function card(clip, active, previous = null) {
  const state = decisionState(clip);
  const image = previous?.querySelector(".thumb img") || (clip.frame ? el("img", {
    src: `/media/frame/${encodeURIComponent(clip.id)}`, alt: `frame of ${clip.id}`, loading: "lazy",
    draggable: "false" }) : null);
  const flags = clip.flags.map((flag) => el("span", { class: "flag" }, flag));
  if (clip.fetch_status && clip.fetch_status !== "ok" && !clip.flags.includes(clip.fetch_status)) {
    flags.push(el("span", { class: "flag" }, `fetch: ${clip.fetch_status}`));
  }
  const d = clip.decision;
  const decisionText = describeDecision(d) + (d?.time ? ` (${d.time})` : "");
  const decisionLine = el("p", { class: `decision ${state}`, title: decisionText },
    d ? [d.decision === "accept" ? "✓ accepted" : "✗ rejected", d.reason ? `: ${d.reason}` : "",
      el("span", { class: "who" }, ` — ${d.reviewer}`)] : "undecided");
  // Only the active card's controls are in the Tab order (one tab stop for the grid; arrows move).
  const tab = active ? "0" : "-1";
  const mask = clip.maskable
    ? el("a", { class: clip.masked ? "mask-link done" : "mask-link", href: `#mask/${encodeURIComponent(clip.id)}`,
      title: "draw the instrument mask (m)", tabindex: tab }, clip.masked ? "mask ✓" : "✎ draw mask")
    : null;
  const times = windowText(clip);
  const node = el("article", {
    class: `card ${state}${active ? " focused" : ""}`, dataset: { id: clip.id }, role: "listitem",
    tabindex: tab, "aria-current": active ? "true" : null,
    "aria-label": `${clip.id}, ${clip.class}, ${state}${times ? `, audio ${times}` : ""}`,
  },
  el("div", { class: "thumb" },
    image || el("div", { class: "noframe" }, "no frame"), mask,
    el("span", { class: `outcome ${clip.outcome}` }, OUTCOME_LABEL[clip.outcome] || clip.outcome)),
  clip.audio ? strip(clip, previous) : null,
  el("div", { class: "audio-row" },
    clip.audio ? [
      el("button", { type: "button", class: "play", dataset: { action: "play" }, tabindex: tab,
        "aria-pressed": "false", title: "play the audio window (Space on the card)" }, "▶ Play"),
      el("button", { type: "button", class: "stop", dataset: { action: "stop" }, tabindex: tab,
        title: "stop the audio" }, "■ Stop"),
    ] : el("span", { class: "noaudio" }, "no audio"),
    el("span", { class: "times", title: clip.start !== null ? `video ${clip.start}–${clip.end} s` : null }, times)),
  el("p", { class: "meta" }, el("code", {}, clip.id)),
  el("p", { class: "meta" }, `${clip.split} · rank ${clip.rank}`),
  el("div", { class: "flags" }, flags),
  decisionLine,
  el("div", { class: "actions" },
    el("button", { type: "button", class: "accept", dataset: { action: "accept" }, title: "accept (a)",
      tabindex: tab }, "✓ Accept"),
    el("button", { type: "button", class: "reject", dataset: { action: "reject" },
      title: "reject with a reason (r)", tabindex: tab }, "✗ Reject"),
    d ? el("button", { type: "button", class: "clear", dataset: { action: "undecided" },
      title: "back to undecided (u)", "aria-label": "back to undecided", tabindex: tab }, "↺") : null));
  markPlaying(node);
  return node;
}

// Make `node` the active card (or not) without drawing it again.
export function setActive(node, active) {
  node.classList.toggle("focused", active);
  if (active) node.setAttribute("aria-current", "true");
  else node.removeAttribute("aria-current");
  const tab = active ? "0" : "-1";
  node.tabIndex = active ? 0 : -1;
  for (const control of node.querySelectorAll("button, a[href]")) control.setAttribute("tabindex", tab);
}
