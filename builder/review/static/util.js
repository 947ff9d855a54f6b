// Shared helpers of the review page: the JSON API, DOM building (text only, never HTML from data),
// the status line, the clip store and the one audio player.

export const $ = (selector) => document.querySelector(selector);

// Writes started and finished by this page: a state snapshot fetched while one was in flight may
// predate it, and must not overwrite it (see fetchState).
const writes = { started: 0, finished: 0 };

export async function api(method, url, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const isWrite = method !== "GET";
  if (isWrite) writes.started += 1;
  let response;
  try {
    response = await fetch(url, init);
  } finally {
    if (isWrite) writes.finished += 1;
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: keep the status text */ }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// el("div", {class: "x", onclick: f}, "text", child) -- strings become text nodes.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

let statusTimer = null;
export function setStatus(text, isError = false) {
  const node = $("#status");
  node.textContent = text;
  node.classList.toggle("error", isError);
  clearTimeout(statusTimer);
  if (!isError) statusTimer = setTimeout(() => { node.textContent = ""; }, 4000);
}

// Everything the server said in /api/state, by id / name, plus the manifest order.
// The server's state, fetched again until no write of this page overlapped the request.
export async function fetchState() {
  for (;;) {
    const idle = writes.finished === writes.started;
    const before = writes.started;
    const data = await api("GET", "/api/state");
    if (idle && writes.started === before) return data;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const store = { state: null, clips: new Map(), classes: new Map(), order: [] };

export function loadState(data) {
  store.state = data;
  store.clips = new Map(data.clips.map((clip) => [clip.id, clip]));
  store.classes = new Map(data.classes.map((cls) => [cls.name, cls]));
  store.order = data.clips.map((clip) => clip.id);
}

// A decision answer: the clip, its class's counts and the class's new curate outcomes.
export function applyDecision(answer) {
  store.clips.set(answer.clip.id, answer.clip);
  for (const [id, outcome] of Object.entries(answer.outcomes)) {
    const clip = store.clips.get(id);
    if (clip) clip.outcome = outcome;
  }
  store.classes.set(answer.class.name, answer.class);
}

export function reviewerName() {
  return $("#reviewer").value.trim();
}

export async function decide(id, decision, reason = "") {
  const reviewer = reviewerName();
  if (!reviewer && decision !== "undecided") {
    setStatus("Type your name in the Reviewer box first", true);
    $("#reviewer").focus();
    return null;
  }
  try {
    const answer = await api("POST", "/api/decision", { clip_id: id, decision, reason, reviewer });
    applyDecision(answer);
    const word = { accept: "accepted", reject: "rejected", undecided: "undecided" }[decision];
    setStatus(`saved: ${id} ${word}`);
    return answer;
  } catch (error) {
    setStatus(`not saved: ${error.message}`, true);
    return null;
  }
}

// One player for the whole page, so hovering over many cards never stacks sounds.
const player = new Audio();
player.preload = "none";
let playing = null;
player.addEventListener("ended", () => { setPlaying(null); });

function setPlaying(id) {
  if (playing) document.querySelectorAll(`[data-id="${CSS.escape(playing)}"]`).forEach((n) => n.classList.remove("playing"));
  playing = id;
  if (id) document.querySelectorAll(`[data-id="${CSS.escape(id)}"]`).forEach((n) => n.classList.add("playing"));
}

export function playAudio(id) {
  const clip = store.clips.get(id);
  if (!clip || !clip.audio) return;
  if (playing !== id) {
    player.src = `/media/audio/${encodeURIComponent(id)}`;
  }
  player.currentTime = 0;
  setPlaying(id);
  // Browsers refuse to play before the first click or key press on the page; that is fine.
  player.play().catch(() => setPlaying(null));
}

export function stopAudio() {
  player.pause();
  setPlaying(null);
}

export function toggleAudio(id) {
  if (playing === id && !player.paused) stopAudio();
  else playAudio(id);
}

const NOT_TEXT = new Set(["checkbox", "radio", "range", "button", "submit"]);

export function isTyping(event) {
  const target = event.target;
  // A box in a dialog that has just closed (Esc) can keep the focus until the browser's next
  // rendering update; keys pressed in between belong to the page, not to that hidden box.
  const closedDialog = target instanceof Element && target.closest("dialog:not([open])");
  if (closedDialog) return false;
  return (target instanceof HTMLInputElement && !NOT_TEXT.has(target.type)) ||
    target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement ||
    (target instanceof HTMLElement && target.isContentEditable);
}

export function dialogOpen() {
  return document.querySelector("dialog[open]") !== null;
}

export function fillSelect(select, options, current) {
  // options: [[value, label], ...]; keeps `current` when it is still offered.
  select.replaceChildren(...options.map(([value, label]) => el("option", { value }, label)));
  select.value = options.some(([value]) => value === current) ? current : options[0][0];
}
