// Names for the UUIDs a page shows (a VM's host, a cluster's zone): one query per resource
// type for all the UUIDs a render asked for, cached for the page's life.

import { query } from "./api.js";

const cache = new Map(); // uuid -> name (or null when the resource has none / is gone)
const pending = new Map(); // collection path -> Map(uuid -> [callbacks])
let timer = null;

async function flush() {
  timer = null;
  const batches = [...pending.entries()];
  pending.clear();
  await Promise.all(batches.map(async ([path, waiting]) => {
    const uuids = [...waiting.keys()];
    try {
      const { items } = await query(path, { q: [`uuid?=${uuids.join(",")}`], limit: uuids.length, count: false, fields: "uuid,name" });
      for (const item of items) cache.set(item.uuid, item.name || null);
    } catch {
      // a name is a nicety: the short UUID stays
    }
    for (const [uuid, callbacks] of waiting) {
      if (!cache.has(uuid)) cache.set(uuid, null);
      callbacks.forEach((fn) => fn(cache.get(uuid)));
    }
  }));
}

// Call fn(name) once the name of ``uuid`` (a resource of collection ``path``) is known.
export function withName(path, uuid, fn) {
  if (cache.has(uuid)) {
    const name = cache.get(uuid);
    if (name) fn(name);
    return;
  }
  if (!pending.has(path)) pending.set(path, new Map());
  const waiting = pending.get(path);
  if (!waiting.has(uuid)) waiting.set(uuid, []);
  waiting.get(uuid).push((name) => { if (name) fn(name); });
  if (!timer) timer = setTimeout(flush, 0);
}

// A link to a referenced resource: its short UUID at once, its name when known.
export function refLink(def, uuid, h) {
  const link = h("a.ref", { href: `#/${def.key}/${uuid}`, title: uuid }, uuid.slice(0, 8));
  withName(def.path, uuid, (name) => { link.textContent = name; });
  return link;
}
