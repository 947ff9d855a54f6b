// The dialog shown when the server refused a save because someone else changed the clip first:
// what they saved, what this page wanted to save, and the choice to keep theirs or mine.
import { $, describeDecision } from "./util.js";

let pending = null;
const dialog = $("#conflict-dialog");
dialog.addEventListener("close", () => {
  const resolve = pending;
  pending = null;
  // Esc, or closing any other way, keeps theirs: nothing is overwritten without a deliberate choice.
  if (resolve) resolve(dialog.returnValue === "mine" ? "mine" : "theirs");
});

function ask(title, theirs, mine, labels) {
  $("#conflict-title").textContent = title;
  $("#conflict-theirs").textContent = theirs;
  $("#conflict-mine").textContent = mine;
  $("#conflict-keep-theirs").textContent = labels[0];
  $("#conflict-keep-mine").textContent = labels[1];
  dialog.returnValue = "";
  if (pending) pending("theirs");
  return new Promise((resolve) => {
    pending = resolve;
    dialog.showModal();
    $("#conflict-keep-theirs").focus();
  });
}

// conflict: the 409's {clip, class, outcomes}; wanted: {decision, reason, reviewer}. -> "theirs" | "mine"
export function askDecision(conflict, wanted) {
  const clip = conflict.clip;
  const when = clip.decision?.time ? ` at ${clip.decision.time}` : "";
  return ask(`${clip.id} was changed by someone else`,
    `Theirs (saved${when}): ${describeDecision(clip.decision)}`,
    `Yours: ${wanted.decision === "undecided" ? "undecided" : describeDecision(wanted)}`,
    ["Keep theirs", "Use mine"]);
}

// conflict: {clip_id, masked, area, version} of the mask now in the file.
export function askMask(conflict, mineArea) {
  return ask(`The mask of ${conflict.clip_id} was changed by someone else`,
    conflict.masked ? `Theirs: a saved mask of ${conflict.area} px` : "Theirs: the mask was deleted",
    mineArea === null ? "Yours: delete the mask" : `Yours: the drawing on screen, ${mineArea} px`,
    ["Load theirs", "Save mine"]);
}
