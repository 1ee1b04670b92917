// The REST v1 client: session, queries, async jobs. Everything the UI knows about the cloud
// comes through here (and the event stream), exactly as any other API client sees it.

import { sha512Hex } from "./sha512.js";

const V1 = "/zstack/v1";
const SESSION_KEY = "zstack.session";

export class ApiError extends Error {
  constructor(status, error) {
    super(`${error.code}: ${error.description}`);
    this.status = status;
    this.code = error.code;
    this.description = error.description;
    this.details = error.details;
  }
}

export const session = {
  get uuid() { return sessionStorage.getItem(SESSION_KEY); },
  set uuid(value) {
    if (value) sessionStorage.setItem(SESSION_KEY, value);
    else sessionStorage.removeItem(SESSION_KEY);
  },
};

const expiredListeners = [];
export function onSessionExpired(fn) { expiredListeners.push(fn); }

function url(path, query) {
  const u = new URL(V1 + path, location.origin);
  for (const [key, value] of query || []) u.searchParams.append(key, value);
  return u;
}

async function send(method, target, body) {
  const headers = { "Content-Type": "application/json" };
  if (session.uuid) headers.Authorization = `OAuth ${session.uuid}`;
  const response = await fetch(target, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // not the node's JSON (a proxy's error page): the status says enough
  }
  if (response.status >= 400) {
    const error = data.error || { code: `HTTP.${response.status}`, description: response.statusText };
    if (error.code === "ID.1001" && session.uuid) {
      session.uuid = null;
      expiredListeners.forEach((fn) => fn());
    }
    throw new ApiError(response.status, error);
  }
  return { status: response.status, data };
}

export async function request(method, path, { body, query } = {}) {
  return send(method, url(path, query), body);
}

export async function login(accountName, password) {
  const { data } = await request("PUT", "/accounts/login", {
    body: { logInByAccount: { accountName, password: sha512Hex(password) } },
  });
  session.uuid = data.inventory.uuid;
  return data.inventory;
}

// Whether the session still works; an expired one is dropped (and the login page shown).
export async function checkSession() {
  const uuid = session.uuid;
  if (!uuid) return false;
  const { data } = await request("GET", `/accounts/sessions/${uuid}/valid`);
  if (data.valid === false && session.uuid === uuid) {
    session.uuid = null;
    expiredListeners.forEach((fn) => fn());
    return false;
  }
  return true;
}

export async function logout() {
  const uuid = session.uuid;
  session.uuid = null;
  if (uuid) await request("DELETE", `/accounts/sessions/${uuid}`).catch(() => {});
}

// A query: conditions are q= strings ("state=Running", "name~=%web%").
export async function query(path, { q = [], sort, start = 0, limit = 20, count = true, fields } = {}) {
  const params = q.map((c) => ["q", c]);
  if (sort) params.push(["sort", sort]);
  params.push(["start", String(start)], ["limit", String(limit)]);
  if (count) params.push(["replyWithCount", "true"]);
  if (fields) params.push(["fields", fields]);
  const { data } = await request("GET", path, { query: params });
  return { items: data.inventories || [], total: data.total ?? (data.inventories || []).length };
}

export async function total(path, q = []) {
  const params = q.map((c) => ["q", c]);
  params.push(["count", "true"]);
  const { data } = await request("GET", path, { query: params });
  return data.total ?? 0;
}

export async function get(path, uuid) {
  const { items } = await query(path, { q: [`uuid=${uuid}`], limit: 1, count: false });
  return items[0] || null;
}

// Start an async API call: answers the job's uuid, its location and the new resource's uuid
// (creates); sync APIs answer { result } at once.
export async function start(method, path, body) {
  const { status, data } = await request(method, path, { body });
  if (status !== 202) return { result: data };
  const jobUuid = data.location.split("/").pop();
  return { jobUuid, location: data.location, resourceUuid: data.resourceUuid };
}

// Poll a job until it ends: its result, or throws ApiError with the API's code.
export async function waitJob(jobUuid, { interval = 400, stop } = {}) {
  for (;;) {
    const { status, data } = await request("GET", `/api-jobs/${jobUuid}`);
    if (status !== 202) return data;
    if (stop && stop()) return null;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export async function trace(jobUuid) {
  const { data } = await request("GET", `/api-jobs/${jobUuid}/trace`);
  return data;
}
