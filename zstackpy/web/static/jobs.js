// Every action the UI starts runs as a job shown in the jobs panel: while it runs, the
// elapsed time and the flow it is in (from its live trace), then its outcome. A failure shows the API's error code and description, and every
// finished job links to its flow trace. Views register onJobEnded to re-read what the job
// touched, so the rows show the real state whether it succeeded or not.

import { ApiError, start, trace, waitJob } from "./api.js";
import { h, mount } from "./dom.js";

const ended = new Set();
const recent = []; // newest first, this browser tab's jobs
const MAX_RECENT = 30;

export function onJobEnded(fn) {
  ended.add(fn);
  return () => ended.delete(fn);
}

export function recentJobs() { return recent; }

function panel() { return document.getElementById("jobs"); }

// The panel survives a reload of the tab: what it shows is kept in sessionStorage.
const STORE_KEY = "zstack.jobs";

function save() {
  const kept = recent.map(({ label, state, startedAt, finishedAt, jobUuid, error }) => ({
    label, state, startedAt, finishedAt, jobUuid,
    error: error ? { code: error.code, description: error.description } : undefined,
  }));
  sessionStorage.setItem(STORE_KEY, JSON.stringify(kept));
}

function element(job) {
  job.el = h("li.job", { dataset: { label: job.label, job: job.jobUuid } });
  return job.el;
}

// Refill the panel after a reload or a new login; jobs that were running are followed again.
export function restoreJobs() {
  recent.length = 0;
  let kept = [];
  try { kept = JSON.parse(sessionStorage.getItem(STORE_KEY) || "[]"); } catch { kept = []; }
  for (const job of kept) {
    recent.push(job);
    panel()?.append(element(job));
    render(job);
    if (job.state !== "Processing") continue;
    // Reloaded before the node even answered the call: nothing to follow.
    if (job.jobUuid) follow(job, waitJob(job.jobUuid)).catch(() => {});
    else { job.state = "Unknown"; render(job); }
  }
}

export function clearJobs() {
  recent.length = 0;
  sessionStorage.removeItem(STORE_KEY);
}

// Where a running job is: its own chain (the first to start) gives done/total steps, the
// deepest flow still running anywhere gives the name to show.
function progressOf(data) {
  const traces = [...data.traces].sort((a, b) => a.started_at - b.started_at);
  if (!traces.length) return null;
  const main = traces[0];
  let current = null;
  const visit = (entries) => entries.forEach((e) => {
    if (e.outcome === "running") current = e.step;
    if (e.children) visit(e.children);
  });
  traces.forEach((t) => visit(t.entries));
  const done = main.entries.filter((e) => e.outcome === "done").length;
  return { done, total: Math.max(main.steps, done + 1), current };
}

function watchProgress(job) {
  let busy = false;
  return setInterval(async () => {
    if (busy || !job.jobUuid || job.state !== "Processing") return;
    busy = true;
    try {
      job.progress = progressOf(await trace(job.jobUuid));
    } catch {
      // progress is a nicety: the job's own outcome still comes from its poll
    } finally {
      busy = false;
    }
  }, 700);
}

async function follow(job, result) {
  const tick = setInterval(() => render(job), 500);
  const watch = watchProgress(job);
  try {
    job.result = await result;
    job.state = "Done";
    return job.result;
  } catch (err) {
    job.state = "Failed";
    job.error = err instanceof ApiError ? err : { code: "CLIENT", description: String(err) };
    throw job.error;
  } finally {
    clearInterval(tick);
    clearInterval(watch);
    job.finishedAt = job.finishedAt || Date.now();
    render(job);
    save();
    for (const fn of ended) {
      try { fn(job); } catch (e) { console.error(e); }
    }
  }
}

function render(job) {
  const elapsed = ((job.finishedAt || Date.now()) - job.startedAt) / 1000;
  const state = job.state === "Processing" ? `running ${elapsed.toFixed(1)} s` : job.state;
  const children = [
    h("div.job-head", {},
      h("span.job-label", {}, job.label),
      h(`span.badge.${job.state === "Done" ? "good" : job.state === "Failed" ? "bad" : "busy"}`,
        { "data-state": job.state }, state)),
  ];
  if (job.state === "Processing") {
    const p = job.progress;
    children.push(p
      ? h("progress.job-progress", { value: p.done, max: p.total })
      : h("progress.job-progress", {}));
    if (p && p.current) children.push(h("div.job-step", {}, `${p.current} (${p.done + 1}/${p.total})`));
  }
  if (job.error) {
    children.push(h("div.error", { role: "alert" },
      h("code.error-code", {}, job.error.code), " ", h("span.error-description", {}, job.error.description)));
  }
  if (job.jobUuid && job.state !== "Processing") {
    children.push(h("a.trace-link", { href: `#/jobs/${job.jobUuid}` }, "flow trace"));
  }
  mount(job.el, children);
}

// Run one API call as a tracked job; resolves to the job's result, or rejects with ApiError.
export async function runJob(label, method, path, body) {
  const job = { label, state: "Processing", startedAt: Date.now() };
  recent.unshift(job);
  recent.length = Math.min(recent.length, MAX_RECENT);
  panel()?.prepend(element(job));
  while (panel() && panel().children.length > MAX_RECENT) panel().lastChild.remove();
  render(job);
  save();
  return follow(job, (async () => {
    const started = await start(method, path, body);
    if (started.jobUuid) {
      job.jobUuid = started.jobUuid;
      job.el.dataset.job = started.jobUuid;
      save();
    }
    return started.result ?? (await waitJob(started.jobUuid));
  })());
}

// An error as the UI shows it inline (forms, detail pages).
export function errorBox(err) {
  return h("div.error", { role: "alert" },
    h("code.error-code", {}, err.code || "ERROR"), " ",
    h("span.error-description", {}, err.description || String(err)));
}
