// The login page: account name and password; the password leaves the page only as its
// SHA-512 digest (api.login).

import { login } from "../api.js";
import { h, mount } from "../dom.js";
import { errorBox } from "../jobs.js";

export function loginView(el, onDone) {
  const name = h("input", { name: "account", value: "admin", required: true, autocomplete: "username" });
  const password = h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" });
  const message = h("div.login-message");
  const form = h("form.login", { onSubmit: async (ev) => {
    ev.preventDefault();
    mount(message);
    try {
      await login(name.value.trim(), password.value);
      onDone();
    } catch (err) {
      mount(message, errorBox(err));
    }
  } },
  h("h1", {}, "zstackpy"),
  h("label", {}, "Account", name),
  h("label", {}, "Password", password),
  h("button.primary", { type: "submit" }, "Log in"),
  message);
  mount(el, form);
  name.focus();
}
