// The dashboard: how many of everything, hosts and VMs by state, capacity used and free.

import { query, request, total } from "../api.js";
import { donut, usage } from "../charts.js";
import { bytes, h, mount } from "../dom.js";
import { RESOURCES } from "../resources.js";

const VM_STATES = ["Running", "Stopped", "Starting", "Stopping", "Paused", "Migrating", "Destroyed", "Crashed", "Unknown"];
const HOST_STATUSES = ["Connected", "Connecting", "Disconnected"];
const HOST_STATES = ["Enabled", "Disabled", "PreMaintenance", "Maintenance"];

async function countBy(path, field, values) {
  const counts = await Promise.all(values.map((v) => total(path, [`${field}=${v}`])));
  return values.map((label, i) => ({ label, value: counts[i] })).filter((s) => s.value > 0);
}

async function hostCapacity() {
  // Sums over every host; a page of 1000 is plenty for a dashboard's accuracy here.
  const { items } = await query("/hosts", {
    limit: 1000, count: false,
    fields: "uuid,totalCpuCapacity,availableCpuCapacity,totalMemoryCapacity,availableMemoryCapacity",
  });
  const sum = (f) => items.reduce((acc, x) => acc + (x[f] || 0), 0);
  return {
    cpuTotal: sum("totalCpuCapacity"), cpuFree: sum("availableCpuCapacity"),
    memTotal: sum("totalMemoryCapacity"), memFree: sum("availableMemoryCapacity"),
  };
}

export async function dashboard(el, live) {
  // The dashboard asks for many counts: it follows the stream, at most every two seconds.
  live(() => render(el), 2000);
  return render(el);
}

async function render(el) {
  const [counts, vms, hosts, hostStates, cap, ps, bs] = await Promise.all([
    Promise.all(RESOURCES.filter((r) => !r.hidden).map(async (r) => [r, await total(r.path)])),
    countBy("/vm-instances", "state", VM_STATES),
    countBy("/hosts", "status", HOST_STATUSES),
    countBy("/hosts", "state", HOST_STATES),
    hostCapacity(),
    request("GET", "/primary-storage/capacities", { query: [["all", "true"]] }).then((r) => r.data),
    request("GET", "/backup-storage/capacities", { query: [["all", "true"]] }).then((r) => r.data),
  ]);
  mount(el,
    h("h1", {}, "Dashboard"),
    h("section.cards", {}, counts.map(([r, n]) => h("a.card", { href: `#/${r.key}`, dataset: { count: r.key } },
      h("span.card-count", {}, String(n)), h("span.card-title", {}, r.title)))),
    h("section.charts", {},
      donut("VMs by state", vms),
      donut("Hosts by status", hosts),
      donut("Hosts by state", hostStates),
      h("div.usages", {},
        usage("CPU (vCPU)", cap.cpuTotal - cap.cpuFree, cap.cpuTotal),
        usage("Memory", cap.memTotal - cap.memFree, cap.memTotal, bytes),
        usage("Primary storage", ps.totalCapacity - ps.availableCapacity, ps.totalCapacity, bytes),
        usage("Backup storage", bs.totalCapacity - bs.availableCapacity, bs.totalCapacity, bytes))));
}
