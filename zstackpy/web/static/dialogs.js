// Modal dialogs on <dialog>: confirm a destructive action, pick a resource, type a value.
// Each answers a promise: the value, or null when cancelled.

import { h } from "./dom.js";

function modal(title, body, { okLabel = "OK", destructive = false, value = () => true } = {}) {
  return new Promise((resolve) => {
    const dialog = h("dialog.modal", { "aria-label": title });
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    dialog.append(h("form", { method: "dialog", onSubmit: (ev) => { ev.preventDefault(); done(value()); } },
      h("h2", {}, title), body,
      h("div.modal-buttons", {},
        h("button", { type: "button", class: "cancel", onClick: () => done(null) }, "Cancel"),
        h(`button.${destructive ? "danger" : "primary"}`, { type: "submit", class: "ok" }, okLabel))));
    dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); done(null); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function confirmDialog(text, okLabel) {
  return modal("Please confirm", h("p", {}, text), { okLabel, destructive: true });
}

export function pickDialog(title, options) {
  const select = h("select", { name: "pick", required: true },
    options.map((o) => h("option", { value: o.value }, o.label)));
  const body = options.length ? h("label", {}, title, select) : h("p", {}, "Nothing to choose from.");
  return modal(title, body, { value: () => (options.length ? select.value : null) });
}

export function askDialog(title) {
  const input = h("input", { name: "answer", required: true });
  return modal(title, h("label", {}, title, input), { value: () => input.value.trim() || null });
}
