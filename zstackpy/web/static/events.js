// The event stream: one EventSource for the whole page. A browser's EventSource cannot send
// an Authorization header, so the session goes in ?sessionUuid= (the node accepts it on
// this route only). There is no replay: after a reconnect, listeners are told to re-read.

import { checkSession, session } from "./api.js";

const listeners = new Set();
let source = null;
let retry = null;

export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(name, data) {
  for (const fn of listeners) {
    try { fn(name, data); } catch (err) { console.error(err); }
  }
}

export function connect() {
  disconnect();
  if (!session.uuid) return;
  source = new EventSource(`/zstack/v1/events?sessionUuid=${encodeURIComponent(session.uuid)}`);
  source.addEventListener("open", () => {
    document.body.dataset.stream = "open";
    emit("resync", {});
  });
  for (const name of ["resourceChanged", "jobCompleted"]) {
    source.addEventListener(name, (ev) => emit(name, JSON.parse(ev.data)));
  }
  source.addEventListener("error", () => {
    // The node ended the stream (stopping, or we fell behind) or the network broke:
    // reconnect ourselves, with a pause, rather than rely on the browser's retry.
    document.body.dataset.stream = "closed";
    if (source) source.close();
    source = null;
    clearTimeout(retry);
    // A stream refused for an expired session would be retried forever: ask first.
    retry = setTimeout(() => checkSession().then((ok) => ok && connect(), () => connect()), 2000);
  });
}

export function disconnect() {
  clearTimeout(retry);
  if (source) source.close();
  source = null;
}
