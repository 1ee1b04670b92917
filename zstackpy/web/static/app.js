// The application shell: hash routes, the layout, and live refresh. Routes:
//   #/                      dashboard
//   #/<resource>?filters    list          #/<resource>/new    create wizard
//   #/<resource>/<uuid>     detail        #/jobs, #/jobs/<uuid>  jobs and flow traces

import { logout, onSessionExpired, session } from "./api.js";
import { h, mount } from "./dom.js";
import { connect, disconnect, onEvent } from "./events.js";
import { clearJobs, errorBox, onJobEnded, restoreJobs } from "./jobs.js";
import { BY_KEY, RESOURCES } from "./resources.js";
import { dashboard } from "./views/dashboard.js";
import { detailView } from "./views/detail.js";
import { listView } from "./views/list.js";
import { loginView } from "./views/login.js";
import { jobsView, traceView } from "./views/trace.js";
import { wizardView } from "./views/wizard.js";

const root = document.getElementById("app");
let cleanups = [];
let main = null;

// A view's loader re-runs (debounced) on any event or finished job: the page then shows
// what the API says now, whether the change came from this tab, another client or the node.
function live(load, delay = 250) {
  let timer = null;
  const again = () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((err) => console.error(err)), delay);
  };
  cleanups.push(onEvent(again), onJobEnded(again), () => clearTimeout(timer));
}

function layout() {
  const nav = h("nav.sidebar", {},
    h("a.brand", { href: "#/" }, "zstackpy"),
    h("a", { href: "#/" }, "Dashboard"),
    RESOURCES.filter((r) => !r.hidden).map((r) => h("a", { href: `#/${r.key}`, dataset: { nav: r.key } }, r.title)),
    h("a", { href: "#/jobs" }, "Jobs"),
    h("button.link.logout", { type: "button", onClick: async () => { disconnect(); clearJobs(); await logout(); route(); } }, "Log out"));
  main = h("main#main");
  mount(root, nav, main, h("aside.jobs-panel", {}, h("h2", {}, "Jobs"), h("ul#jobs")),
    h("div.stream-status", { title: "event stream" }));
}

async function render(view, path, params) {
  const [key, second] = path.split("/").filter(Boolean);
  if (!key) return dashboard(view, live);
  if (key === "jobs") return second ? traceView(view, second) : jobsView(view);
  const def = BY_KEY[key];
  if (!def) return mount(view, h("h1", {}, "Not found"), h("p", {}, `No page ${path}.`));
  if (second === "new" && def.create) return wizardView(view, def);
  if (second) return detailView(view, def, second, live);
  return listView(view, def, params, live);
}

async function route() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  if (!session.uuid) {
    disconnect();
    main = null;
    loginView(root, () => route());
    return;
  }
  if (!main) {
    layout();
    restoreJobs();
    connect();
  }
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search || "");
  document.querySelectorAll("nav.sidebar a").forEach((a) => {
    a.classList.toggle("active", a.getAttribute("href") === `#/${(path || "/").split("/").filter(Boolean)[0] || ""}`);
  });
  // Each route renders into an element of its own: a load still in flight from the page
  // left behind then fills a detached element instead of the new page.
  const view = h("div.view");
  mount(main, view);
  try {
    await render(view, path || "/", params);
  } catch (err) {
    mount(view, h("h1", {}, "Something went wrong"), errorBox(err));
  }
  document.body.dataset.route = path || "/";
}

onSessionExpired(() => route());
window.addEventListener("hashchange", route);
route();
