// A detail page: the resource's properties, the actions the API allows in its current
// state (destructive ones confirmed first), related resources and user tags. It re-reads
// itself when the event stream or a finished job says something changed.

import { get, query, request } from "../api.js";
import { badge, bytes, h, mount, shortUuid } from "../dom.js";
import { askDialog, confirmDialog, pickDialog } from "../dialogs.js";
import { errorBox, runJob } from "../jobs.js";
import { refLink } from "../names.js";
import { BY_KEY, REFERENCES } from "../resources.js";
import { table } from "./table.js";

const HIDDEN = new Set(["name", "uuid", "vmNics", "allVolumes", "ipRanges", "backupStorageRefs", "usedIps", "dns"]);
const SIZE_FIELDS = /(Capacity|Size|size)$/;

function value(field, v) {
  if (v === null || v === undefined) return "";
  if (REFERENCES[field]) return refLink(BY_KEY[REFERENCES[field]], v, h);
  if (field === "state" || field === "status") return badge(v);
  if (typeof v === "number" && SIZE_FIELDS.test(field) && v > 4096) return `${bytes(v)} (${v})`;
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === "string" && /^[0-9a-f]{32}$/.test(x) ? shortUuid(x) : JSON.stringify(x))).join(", ");
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

async function options(pick) {
  if (pick.source) {
    const { data } = await request("GET", pick.source);
    return (data.inventories || []).map((i) => ({ value: i.uuid, label: `${i.name || ""} ${shortUuid(i.uuid)}` }));
  }
  const def = BY_KEY[pick.resource];
  const { items } = await query(def.path, { q: pick.q || [], limit: 200, count: false });
  return items.map((i) => ({ value: i.uuid, label: `${i.name || ""} ${shortUuid(i.uuid)}` }));
}

// Ask what the action needs, then run it as a job; null when the operator cancelled.
async function perform(action, subject) {
  let path = action.path;
  let body = action.body;
  if (action.confirm && !(await confirmDialog(action.confirm, action.label))) return null;
  if (action.pick) {
    const chosen = await pickDialog(action.pick.label, await options(action.pick));
    if (!chosen) return null;
    if (action.pick.field) body = { ...(body || {}), [action.pick.field]: chosen };
    if (typeof path === "function") path = path(chosen);
  }
  if (action.ask) {
    const answer = await askDialog(action.ask.label);
    if (!answer) return null;
    if (typeof path === "function") path = path(answer);
    if (typeof body === "function") body = body(answer);
  }
  const payload = action.key ? { [action.key]: body || {} } : body;
  return runJob(`${action.label} ${subject}`, action.method, path, payload);
}

function tagsSection(def, inv, reload) {
  const box = h("section.tags", {}, h("h2", {}, "Tags"));
  const list = h("ul.tag-list");
  const input = h("input", { name: "tag", placeholder: "new tag" });
  const add = h("form.tag-form", { onSubmit: async (ev) => {
    ev.preventDefault();
    const tag = input.value.trim();
    if (!tag) return;
    await runJob(`Tag ${inv.name || inv.uuid}`, "POST", "/user-tags",
      { params: { resourceType: def.vo, resourceUuid: inv.uuid, tag } }).catch(() => {});
    reload();
  } }, input, h("button", { type: "submit" }, "Add tag"));
  box.append(list, add);
  query("/user-tags", { q: [`resourceUuid=${inv.uuid}`], limit: 100, count: false }).then(({ items }) => {
    mount(list, items.map((t) => h("li.tag", {}, t.tag,
      h("button.link", { type: "button", title: "remove", onClick: async () => {
        await runJob(`Remove tag ${t.tag}`, "DELETE", `/tags/${t.uuid}`).catch(() => {});
        reload();
      } }, "×"))));
  });
  return box;
}

export async function detailView(el, def, uuid, live) {
  let lastError = null;
  async function load() {
    const inv = await get(def.path, uuid);
    if (!inv) {
      mount(el, h("h1", {}, def.title), h("p.gone", {}, `This ${def.noun} does not exist (any more).`),
        h("a", { href: `#/${def.key}` }, `All ${def.title.toLowerCase()}`));
      return;
    }
    const actions = def.actions(inv).map((a) => h(`button.action${a.destructive ? ".danger" : ""}`, {
      type: "button", dataset: { action: a.label },
      onClick: async () => {
        try {
          lastError = null;
          await perform(a, inv.name || inv.ip || shortUuid(inv.uuid));
        } catch (err) {
          lastError = err;
        }
        await load();
      },
    }, a.label));
    const props = Object.entries(inv).filter(([k]) => !HIDDEN.has(k));
    const related = await Promise.all(def.related(inv).map(async (r) => {
      const rdef = BY_KEY[r.resource];
      const { items, total } = await query(rdef.path, { q: r.q, limit: 50 });
      return h("section.related", { dataset: { related: r.resource } }, h("h2", {}, `${r.title} (${total})`), table(rdef, items));
    }));
    mount(el,
      h("p.crumbs", {}, h("a", { href: `#/${def.key}` }, def.title), " / "),
      h("h1", {}, inv.name || inv.ip || shortUuid(inv.uuid), " ", badge(inv.state), " ", badge(inv.status)),
      h("p.uuid", {}, h("code", {}, inv.uuid)),
      lastError ? h("div.last-error", {}, "The last action failed: ", errorBox(lastError)) : null,
      h("div.actions", {}, actions),
      // Related resources first: for a VM its host, NICs and volumes matter more than
      // the raw properties below them.
      related,
      h("h2", {}, "Properties"),
      h("div.detail-grid", {},
        h("table.props", {}, h("tbody", {}, props.map(([k, v]) => h("tr", { dataset: { field: k } }, h("th", {}, k), h("td", {}, value(k, v)))))),
        def.vo && def.key !== "vm-nics" ? tagsSection(def, inv, load) : null));
    el.dataset.state = inv.state || "";
  }
  live(load);
  return load();
}
