// One page of a resource query as a table: shared by list views and the related-resource
// tables of detail pages.

import { badge, h, shortUuid } from "../dom.js";
import { refLink } from "../names.js";
import { BY_KEY, REFERENCES } from "../resources.js";

export function cell(def, column, inv) {
  const value = inv[column.field];
  if (column.link || (column.field === "ip" && def.key === "vm-nics")) {
    const target = def.key === "vm-nics" ? `#/vm-instances/${inv.vmInstanceUuid}` : `#/${def.key}/${inv.uuid}`;
    return h("a", { href: target }, value || shortUuid(inv.uuid));
  }
  if (column.badge) return badge(value);
  if (column.format) return column.format(value);
  if (REFERENCES[column.field] && value) {
    return refLink(BY_KEY[REFERENCES[column.field]], value, h);
  }
  if (column.field === "createDate") return value || "";
  return value === null || value === undefined ? "" : String(value);
}

// sort: "+name" / "-name"; onSort(field) is called when a sortable header is clicked.
export function table(def, items, { sort, onSort } = {}) {
  const head = h("tr", {}, def.columns.map((c) => {
    const sortable = onSort && !c.noSort;
    const active = sort && sort.slice(1) === c.field;
    const arrow = active ? (sort[0] === "-" ? " ▼" : " ▲") : "";
    return h("th", { dataset: { field: c.field }, class: sortable ? "sortable" : undefined,
      onClick: sortable ? () => onSort(c.field) : undefined, "aria-sort": active ? (sort[0] === "-" ? "descending" : "ascending") : undefined },
    c.label + arrow);
  }));
  const rows = items.map((inv) => h("tr", { dataset: { uuid: inv.uuid, name: inv.name || "" } },
    def.columns.map((c) => h("td", { dataset: { field: c.field } }, cell(def, c, inv)))));
  const body = rows.length ? rows : [h("tr.empty", {}, h("td", { colSpan: def.columns.length }, "Nothing here."))];
  return h("table.grid", { dataset: { resource: def.key } }, h("thead", {}, head), h("tbody", {}, body));
}
