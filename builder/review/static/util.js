// Shared helpers of the review page: the JSON API, DOM building (text only, never HTML from data),
// the status line, the clip store and decisions with their versions.

export const $ = (selector) => document.querySelector(selector);

// Writes started and finished by this page: a state snapshot fetched while one was in flight may
// predate it, and must not overwrite it (see fetchState and sync.js).
export const writes = { started: 0, finished: 0 };

// An answer other than 2xx: the server's message, its status and the whole JSON body (a 409's conflict).
export class ApiError extends Error {
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

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
  if (!response.ok) {
    throw new ApiError((data && data.error) || `${response.status} ${response.statusText}`, response.status, data);
  }
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
  node.title = text;
  node.classList.toggle("error", isError);
  clearTimeout(statusTimer);
  if (!isError) statusTimer = setTimeout(() => { node.textContent = ""; }, 4000);
}

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

// Everything the server said in /api/state, by id / name, plus the manifest order and the
// change-feed position (seq of this server run's instance).
export const store = { state: null, clips: new Map(), classes: new Map(), order: [], seq: 0, instance: "" };

export function loadState(data) {
  store.state = data;
  store.clips = new Map(data.clips.map((clip) => [clip.id, clip]));
  store.classes = new Map(data.classes.map((cls) => [cls.name, cls]));
  store.order = data.clips.map((clip) => clip.id);
  store.seq = data.seq;
  store.instance = data.instance;
}

// A decision answer (or a 409's current view): the clip, its class's counts and curate outcomes.
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

export function decisionState(clip) {
  if (clip.decision) return clip.decision.decision === "accept" ? "accepted" : "rejected";
  return "undecided";
}

export function describeDecision(decision) {
  if (!decision) return "undecided";
  const word = decision.decision === "accept" ? "✓ accepted" : "✗ rejected";
  return `${word}${decision.reason ? `: ${decision.reason}` : ""}${decision.reviewer ? ` — ${decision.reviewer}` : ""}`;
}

// Save one decision based on the version this page holds. Returns {answer} when saved,
// {conflict} when someone else changed the clip first (the store then holds their state),
// or null after an error (shown on the status line).
export async function decide(id, decision, reason = "", extra = {}) {
  const reviewer = extra.reviewer ?? reviewerName();
  if (!reviewer && decision !== "undecided") {
    setStatus("Type your name in the Reviewer box first", true);
    $("#reviewer").focus();
    return null;
  }
  const base = extra.base ?? store.clips.get(id)?.version ?? "";
  const body = { clip_id: id, decision, reason, reviewer, base };
  if (extra.time) body.time = extra.time;
  try {
    const answer = await api("POST", "/api/decision", body);
    applyDecision(answer);
    const word = { accept: "accepted", reject: "rejected", undecided: "undecided" }[decision];
    setStatus(`saved: ${id} ${word}`);
    return { answer };
  } catch (error) {
    if (error.status === 409 && error.data?.conflict) {
      applyDecision(error.data.conflict);
      setStatus(`not saved: ${error.message}`, true);
      return { conflict: error.data.conflict };
    }
    setStatus(`not saved: ${error.message}`, true);
    return null;
  }
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

// A focused control that Enter / Space press (or, for a range or checkbox, change): the browser's.
export function isControl(target) {
  return target instanceof Element && target.matches("button, a[href], input, select, summary, audio");
}

export function dialogOpen() {
  return document.querySelector("dialog[open]") !== null;
}

export function fillSelect(select, options, current) {
  // options: [[value, label], ...]; keeps `current` when it is still offered.
  select.replaceChildren(...options.map(([value, label]) => el("option", { value }, label)));
  select.value = options.some(([value]) => value === current) ? current : options[0][0];
}

export function seconds(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

// The AudioSet segment's length (10 s as a rule), or null.
export function segmentSeconds(clip) {
  return clip.start !== null && clip.end !== null && clip.end > clip.start ? clip.end - clip.start : null;
}

// "2.0–5.0 s of 10 s": where the audio window lies in the AudioSet segment.
export function windowText(clip) {
  const duration = segmentSeconds(clip);
  if (clip.window && duration) {
    const [offset, length] = clip.window;
    return `${offset.toFixed(1)}–${(offset + length).toFixed(1)} s of ${seconds(duration)} s`;
  }
  return duration ? `${seconds(duration)} s segment` : "";
}
