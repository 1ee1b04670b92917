// The flow trace of a job: every chain it ran (in the order they started: the job's own
// chain first, then the chains its flows ran), each flow's start, duration and outcome,
// what was rolled back (and how long that took), and the error that started it.

import { trace } from "../api.js";
import { badge, h, mount, seconds } from "../dom.js";
import { errorBox, recentJobs } from "../jobs.js";

function rows(entries, runStart, runDuration, depth = 0) {
  return entries.flatMap((e) => {
    const offset = e.started_at !== undefined ? e.started_at - runStart : null;
    const left = offset === null || !runDuration ? 0 : (offset / runDuration) * 100;
    const width = !runDuration || e.duration_s === undefined ? 0 : Math.max(0.5, (e.duration_s / runDuration) * 100);
    const row = h("tr", { dataset: { step: e.step, outcome: e.outcome } },
      h("td.step", { style: `padding-left:${0.5 + depth * 1.5}em` }, e.kind === "chain" ? `▸ ${e.step}` : e.step),
      h("td", {}, badge(e.outcome)),
      h("td.num", {}, offset === null ? "" : seconds(offset)),
      h("td.num", {}, seconds(e.duration_s)),
      h("td.timeline", {}, h("div.bar-track", {}, h(`div.bar.${e.outcome}`, { style: `margin-left:${left}%;width:${width}%` }))),
      h("td.num", {}, e.rollback_duration_s !== undefined ? seconds(e.rollback_duration_s) : ""));
    // Errors go on a row of their own, under the flow, so the columns stay readable.
    const errors = [];
    if (e.error) errors.push(h("div", {}, "failed: ", errorBox(e.error)));
    if (e.rollback_error) errors.push(h("div", {}, "rollback failed: ", errorBox(e.rollback_error)));
    const errorRow = errors.length
      ? [h("tr.trace-error", { dataset: { errorOf: e.step } }, h("td", { colSpan: 6, style: `padding-left:${0.5 + depth * 1.5}em` }, errors))]
      : [];
    return [row, ...errorRow, ...(e.children ? rows(e.children, runStart, runDuration, depth + 1) : [])];
  });
}

function chain(t) {
  return h("section.trace", { dataset: { chain: t.chain } },
    h("h2", {}, `Chain ${t.chain} `, badge(t.outcome), ` ${seconds(t.duration_s)}`),
    t.error ? h("p", {}, "Failed with ", errorBox(t.error)) : null,
    h("table.grid.trace-table", {},
      h("thead", {}, h("tr", {}, ["Flow", "Outcome", "Start", "Duration", "Timeline", "Rollback took"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows(t.entries, t.started_at, t.duration_s))));
}

export async function traceView(el, jobUuid) {
  const data = await trace(jobUuid);
  mount(el,
    h("p.crumbs", {}, h("a", { href: "#/jobs" }, "Jobs"), " / "),
    h("h1", {}, `${data.apiName} `, badge(data.state)),
    h("p.uuid", {}, "job ", h("code", {}, data.jobUuid), data.resourceUuid ? [" · resource ", h("code", {}, data.resourceUuid)] : null),
    h("p", {}, `started ${data.createDate}`, data.finishedDate ? `, finished ${data.finishedDate}` : ", still running"),
    data.error ? errorBox(data.error) : null,
    data.traces.length ? [...data.traces].sort((a, b) => a.started_at - b.started_at).map(chain) : h("p.no-trace", {}, data.state === "Processing"
      ? "The job is still running; its trace is kept when it ends."
      : "This job ran no flow chain on its node."));
}

export function jobsView(el) {
  const input = h("input", { name: "job", placeholder: "job UUID" });
  mount(el, h("h1", {}, "Jobs"),
    h("form.toolbar", { onSubmit: (ev) => { ev.preventDefault(); if (input.value.trim()) location.hash = `#/jobs/${input.value.trim()}`; } },
      input, h("button", { type: "submit" }, "Show trace")),
    h("table.grid", {}, h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "State"), h("th", {}, "Trace"))),
      h("tbody", {}, recentJobs().map((j) => h("tr", {},
        h("td", {}, j.label), h("td", {}, badge(j.state)),
        h("td", {}, j.jobUuid ? h("a", { href: `#/jobs/${j.jobUuid}` }, j.jobUuid) : ""))))));
}
