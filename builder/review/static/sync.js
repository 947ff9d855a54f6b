// Picks up what other tabs, reviewers and scripts saved: while the tab is visible it asks the
// server every POLL_MS for the clips changed since the last answer (a few hundred bytes when
// nothing changed) and hands the new records to the views.
import { api, setStatus, store, writes } from "./util.js";

const POLL_MS = 2000;

export function startSync({ onChanges, onReload }) {
  let busy = false;
  let failures = 0;

  async function poll() {
    if (busy || !store.state || document.visibilityState !== "visible") return;
    if (writes.finished !== writes.started) return;       // this page's own save answers first
    busy = true;
    const started = writes.started;
    try {
      const data = await api("GET", `/api/changes?since=${store.seq}&instance=${encodeURIComponent(store.instance)}`);
      failures = 0;
      // A save of this page overlapped the request: its answer may be newer. Ask again next time.
      if (writes.started !== started) return;
      if (data.reload) { await onReload(); return; }
      if (data.seq === store.seq) return;
      const news = data.clips.filter((clip) => {
        const known = store.clips.get(clip.id);
        // versions are left out of a record when empty
        return !known || (known.version || "") !== (clip.version || "") ||
          (known.mask_version || "") !== (clip.mask_version || "");
      });
      for (const clip of data.clips) store.clips.set(clip.id, clip);
      for (const cls of data.classes) store.classes.set(cls.name, cls);
      for (const [id, outcome] of Object.entries(data.outcomes)) {
        const clip = store.clips.get(id);
        if (clip) clip.outcome = outcome;
      }
      store.seq = data.seq;
      if (news.length) {
        const names = [...new Set(news.map((c) => c.decision?.reviewer).filter(Boolean))];
        setStatus(`${news.length} clip(s) changed elsewhere${names.length ? ` (${names.join(", ")})` : ""}: ` +
          news.slice(0, 3).map((c) => c.id).join(", ") + (news.length > 3 ? " …" : ""));
      }
      onChanges(data, news);
    } catch (error) {
      failures += 1;
      if (failures === 3) setStatus(`cannot reach the review server: ${error.message}`, true);
    } finally {
      busy = false;
    }
  }

  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") poll(); });
  return poll;
}
