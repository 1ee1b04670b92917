// Building DOM nodes without a framework: h("tag#id.class", {attrs}, children...).

export function h(spec, attrs = {}, ...children) {
  const [head, ...classes] = spec.split(".");
  const [tag, id] = head.split("#");
  const el = document.createElement(tag || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  if (n === null || n === undefined) return "";
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit++; }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
}

export function shortUuid(uuid) {
  return uuid ? uuid.slice(0, 8) : "";
}

export function seconds(s) {
  if (s === undefined || s === null) return "";
  return s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`;
}

// A state word as a coloured badge; the class groups states by what they mean to an operator.
const GOOD = new Set(["Running", "Connected", "Enabled", "Ready", "Done", "done"]);
const BAD = new Set(["Error", "Disconnected", "Failed", "failed", "Crashed", "Unknown", "rollback-failed"]);
const BUSY = new Set(["Starting", "Stopping", "Rebooting", "Migrating", "Connecting", "Creating",
  "Destroying", "Processing", "Downloading", "Pausing", "Resuming", "Expunging", "rolled-back"]);

export function badge(state) {
  if (state === undefined || state === null || state === "") return "";
  const kind = GOOD.has(state) ? "good" : BAD.has(state) ? "bad" : BUSY.has(state) ? "busy" : "idle";
  return h(`span.badge.${kind}`, { "data-state": state }, state);
}
