// A list view: server-side paging, sorting and filtering through the query API. Search
// and filters live in the URL (#/vm-instances?search=web&state=Running&sort=-name&start=20),
// so a reload or a shared link shows the same page. Rows follow the event stream.

import { query } from "../api.js";
import { h, mount } from "../dom.js";
import { errorBox } from "../jobs.js";
import { table } from "./table.js";

const PAGE = 20;

export function conditions(def, params) {
  const q = [];
  const search = params.get("search");
  // ~= is SQL LIKE: % and _ typed by the operator keep their meaning, as in the CLI.
  if (search) q.push(`${def.search || "name"}~=%${search}%`);
  for (const f of def.filters) {
    const value = params.get(f.field);
    if (value) q.push(`${f.field}=${value}`);
  }
  return q;
}

export function listView(el, def, params, live) {
  const go = (changes) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "" || value === undefined) next.delete(key);
      else next.set(key, value);
    }
    if (!("start" in changes)) next.delete("start");
    const text = next.toString();
    location.hash = `#/${def.key}${text ? "?" + text : ""}`;
  };
  const sort = params.get("sort") || "-createDate";
  const start = Number(params.get("start") || 0);
  const results = h("div.results");
  const search = h("input.search", { type: "search", name: "search", placeholder: `Search ${def.title} by ${def.search || "name"}`,
    value: params.get("search") || "" });
  const toolbar = h("form.toolbar", { onSubmit: (ev) => { ev.preventDefault(); go({ search: search.value.trim() }); } },
    search, h("button", { type: "submit" }, "Search"),
    def.filters.map((f) => h("label.filter", {}, f.field,
      h("select", { name: f.field, onChange: (ev) => go({ [f.field]: ev.target.value }) },
        h("option", { value: "" }, "any"),
        f.options.map((o) => h("option", { value: o, selected: params.get(f.field) === o }, o))))),
    def.create ? h("a.button.primary", { href: `#/${def.key}/new` }, `New ${def.noun}`) : null);
  mount(el, h("h1", {}, def.title), toolbar, results);

  const onSort = (field) => {
    const next = sort.slice(1) === field && sort[0] === "+" ? `-${field}` : `+${field}`;
    go({ sort: next });
  };
  async function load() {
    try {
      const { items, total } = await query(def.path, { q: conditions(def, params), sort, start, limit: PAGE });
      const pages = h("div.pager", {},
        h("button", { type: "button", disabled: start === 0, onClick: () => go({ start: Math.max(0, start - PAGE) || null }) }, "‹ Previous"),
        h("span.page-info", {}, total ? `${start + 1}–${start + items.length} of ${total}` : "0 results"),
        h("button", { type: "button", disabled: start + PAGE >= total, onClick: () => go({ start: start + PAGE }) }, "Next ›"));
      mount(results, table(def, items, { sort, onSort }), pages);
      results.dataset.total = String(total);
    } catch (err) {
      mount(results, errorBox(err));
    }
  }
  live(load);
  return load();
}
