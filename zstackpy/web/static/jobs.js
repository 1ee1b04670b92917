// Every action the UI starts runs as a job shown in the jobs panel: elapsed time while it
// runs, then its outcome. A failure shows the API's error code and description, and every
// finished job links to its flow trace. Views register onJobEnded to re-read what the job
// touched, so the rows show the real state whether it succeeded or not.

import { ApiError, start, waitJob } from "./api.js";
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

function render(job) {
  const elapsed = ((job.finishedAt || Date.now()) - job.startedAt) / 1000;
  const state = job.state === "Processing" ? `running ${elapsed.toFixed(1)} s` : job.state;
  const children = [
    h("div.job-head", {},
      h("span.job-label", {}, job.label),
      h(`span.badge.${job.state === "Done" ? "good" : job.state === "Failed" ? "bad" : "busy"}`,
        { "data-state": job.state }, state)),
  ];
  if (job.state === "Processing") children.push(h("progress.job-progress", {}));
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
  const job = { label, state: "Processing", startedAt: Date.now(), el: h("li.job") };
  job.el.dataset.label = label;
  recent.unshift(job);
  recent.length = Math.min(recent.length, MAX_RECENT);
  panel()?.prepend(job.el);
  render(job);
  const tick = setInterval(() => render(job), 500);
  try {
    const started = await start(method, path, body);
    job.jobUuid = started.jobUuid;
    if (started.jobUuid) job.el.dataset.job = started.jobUuid;
    const result = started.result ?? (await waitJob(started.jobUuid));
    job.state = "Done";
    job.result = result;
    return result;
  } catch (err) {
    job.state = "Failed";
    job.error = err instanceof ApiError ? err : { code: "CLIENT", description: String(err) };
    throw job.error;
  } finally {
    clearInterval(tick);
    job.finishedAt = Date.now();
    render(job);
    for (const fn of ended) {
      try { fn(job); } catch (e) { console.error(e); }
    }
  }
}

// An error as the UI shows it inline (forms, detail pages).
export function errorBox(err) {
  return h("div.error", { role: "alert" },
    h("code.error-code", {}, err.code || "ERROR"), " ",
    h("span.error-description", {}, err.description || String(err)));
}
