// A create wizard: the definition's steps one at a time, then the API calls it names, each
// a tracked job. A failure keeps the wizard open with the API's code and description.

import { query } from "../api.js";
import { h, mount, shortUuid } from "../dom.js";
import { errorBox, runJob } from "../jobs.js";
import { BY_KEY } from "../resources.js";

async function fieldInput(field, values) {
  const current = values[field.name] ?? field.value ?? "";
  const attrs = { name: field.name, required: field.required, id: `f-${field.name}` };
  if (field.ref) {
    const def = BY_KEY[field.ref];
    const { items } = await query(def.path, { q: field.refQuery || [], limit: 200, count: false, sort: "+name" });
    const opts = items.map((i) => h("option", {
      value: i.uuid,
      selected: field.multiple ? (current || []).includes(i.uuid) : current === i.uuid,
    }, `${i.name} (${shortUuid(i.uuid)})`));
    if (field.multiple) return h("select", { ...attrs, multiple: true, size: Math.min(6, Math.max(2, items.length)) }, opts);
    return h("select", attrs, h("option", { value: "" }, field.optional ? "(none)" : "choose…"), opts);
  }
  if (field.options) {
    return h("select", attrs, field.options.map((o) => h("option", { value: o, selected: o === current }, o)));
  }
  return h("input", { ...attrs, type: field.type || "text", value: current, min: field.type === "number" ? "0" : undefined });
}

function read(form, step, values, labels) {
  for (const field of step.fields) {
    const input = form.elements[field.name];
    if (!input) continue;
    if (input.tagName === "SELECT") labels[field.name] = [...input.selectedOptions].map((o) => o.textContent).join(", ");
    else if (field.type !== "password") labels[field.name] = input.value.trim();
    let v = field.multiple ? [...input.selectedOptions].map((o) => o.value) : input.value.trim();
    if (field.multiple && !v.length) v = undefined;
    if (v === "") v = undefined;
    values[field.name] = v;
  }
}

// The choices of the earlier steps, shown on the last one before anything is created.
function summary(done, labels) {
  const rows = done.flatMap((s) => s.fields)
    .filter((f) => labels[f.name])
    .map((f) => h("tr", { dataset: { field: f.name } }, h("th", {}, f.label), h("td", {}, labels[f.name])));
  return h("table.props.summary", {}, h("caption", {}, "Summary"), h("tbody", {}, rows));
}

export async function wizardView(el, def) {
  const steps = def.create.steps;
  const values = {};
  const labels = {}; // what the operator saw for each chosen value, for the summary
  let index = 0;
  let error = null;

  async function render() {
    const step = steps[index];
    const inputs = await Promise.all(step.fields.map(async (f) =>
      h("label.field", { for: `f-${f.name}` }, h("span", {}, f.label + (f.required ? " *" : "")), await fieldInput(f, values))));
    const last = index === steps.length - 1;
    const form = h("form.wizard", { onSubmit: async (ev) => {
      ev.preventDefault();
      read(form, step, values, labels);
      if (!last) { index++; error = null; return render(); }
      return submit(form);
    } },
    h("ol.steps", {}, steps.map((s, i) => h(`li${i === index ? ".current" : i < index ? ".done" : ""}`, {}, s.title))),
    h("h2", {}, step.title), inputs,
    last && index > 0 ? summary(steps.slice(0, index), labels) : null,
    error ? errorBox(error) : null,
    h("div.wizard-buttons", {},
      index > 0 ? h("button", { type: "button", class: "back", onClick: () => { read(form, step, values, labels); index--; render(); } }, "Back") : null,
      h("a.button", { href: `#/${def.key}` }, "Cancel"),
      h("button.primary", { type: "submit", class: last ? "create" : "next" }, last ? `Create ${def.noun}` : "Next")));
    mount(el, h("h1", {}, `New ${def.noun}`), form);
  }

  async function submit(form) {
    const params = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    form.append(h("p.working", {}, h("progress", {}), " working…"));
    try {
      const result = await def.create.submit(params, runJob);
      location.hash = `#/${def.key}/${result.inventory.uuid}`;
    } catch (err) {
      error = err;
      await render();
    }
  }

  return render();
}
