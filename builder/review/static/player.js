// The page's one audio player (the <audio> in the top bar, so playback is seen and can be
// stopped there too) and the playhead on the playing clip's waveform strip.
import { $, segmentSeconds, store, windowText } from "./util.js";

const player = $("#player");
let playing = null;
let frame = 0;

player.addEventListener("ended", () => stopAudio());
player.addEventListener("pause", () => { if (playing) showPlaying(playing, false); });
player.addEventListener("play", () => { if (playing) showPlaying(playing, true); });

function nodesOf(id) {
  return id ? document.querySelectorAll(`[data-id="${CSS.escape(id)}"]`) : [];
}

// The playhead of a card's strip, made when first needed (most cards never play).
function playheads(node) {
  const strip = node.querySelector(".strip");
  if (strip && !strip.querySelector(".playhead")) {
    const head = document.createElement("div");
    head.className = "playhead";
    head.hidden = true;
    head.setAttribute("aria-hidden", "true");
    strip.append(head);
  }
  return node.querySelectorAll(".playhead");
}

function showPlaying(id, on) {
  for (const node of nodesOf(id)) {
    node.classList.toggle("playing", on);
    for (const button of node.querySelectorAll("[data-action=play]")) button.setAttribute("aria-pressed", String(on));
    for (const head of playheads(node)) head.hidden = !on;
  }
  cancelAnimationFrame(frame);
  if (on) frame = requestAnimationFrame(tick);
}

// The playhead sits at the window's offset plus the player's time, as a share of the segment.
function tick() {
  const clip = store.clips.get(playing);
  if (!clip) return;
  const offset = clip.window ? clip.window[0] : 0;
  const span = segmentSeconds(clip) || player.duration || 1;
  const at = Math.min(100, Math.max(0, (100 * (offset + player.currentTime)) / span));
  for (const node of nodesOf(playing)) {
    for (const head of playheads(node)) {
      head.style.left = `${at}%`;
      head.dataset.time = (offset + player.currentTime).toFixed(2);
    }
  }
  if (!player.paused) frame = requestAnimationFrame(tick);
}

export function playingId() {
  return playing;
}

export function playAudio(id) {
  const clip = store.clips.get(id);
  if (!clip || !clip.audio) return;
  if (playing !== id) {
    stopAudio();
    player.src = `/media/audio/${encodeURIComponent(id)}`;
    playing = id;
    $("#now-playing").textContent = `${id} · ${windowText(clip)}`;
    $("#now-playing").title = $("#now-playing").textContent;
  }
  player.currentTime = 0;
  showPlaying(id, true);
  // Browsers refuse to play before the first click or key press on the page; that is fine.
  player.play().catch(() => showPlaying(id, false));
}

export function stopAudio() {
  if (!playing) return;
  const id = playing;
  player.pause();
  playing = null;
  showPlaying(id, false);
  $("#now-playing").textContent = "";
}

export function toggleAudio(id) {
  if (playing === id && !player.paused) stopAudio();
  else playAudio(id);
}

// A card drawn again while its clip plays keeps showing it.
export function markPlaying(node) {
  if (node.dataset.id === playing && !player.paused) {
    node.classList.add("playing");
    for (const head of playheads(node)) head.hidden = false;
    for (const button of node.querySelectorAll("[data-action=play]")) button.setAttribute("aria-pressed", "true");
  }
}
