// Talking to the Vidivo API from the browser: tokens, errors in the API's shape, money as cents.
import { clearErrors, plainCode, plainDetail, showApiError, validate } from "./forms.js";

const HOST_KEY = "vidivo.host";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `Request failed (${status})`);
    this.status = status;
    this.code = error.code || "unknown";
    this.details = error.details || [];
  }

  // What a person reads: the first field problem in plain words, else the error in words.
  get explanation() {
    const detail = this.details.find((d) => d && d.message);
    return detail ? plainDetail(detail.message) : plainCode(this.code, this.message);
  }
}

// What to show a person for any error: the API's explanation, or the browser's message.
export function explain(error) {
  return error instanceof ApiError ? error.explanation : error.message;
}

// A form that calls the API on submit: its fields are checked in the browser first (each
// problem beside its field), its button is disabled while the call runs, and a failure goes
// onto the fields it names or, failing that, into the element `errorId`.
export function onSubmit(formId, errorId, handler) {
  const errorBox = document.getElementById(errorId);
  const form = document.getElementById(formId);
  form.noValidate = true;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.textContent = "";
    if (!validate(form)) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await handler(form);
      clearErrors(form);
    } catch (error) {
      errorBox.textContent = error instanceof ApiError ? showApiError(form, error) : explain(error);
    }
    button.disabled = false;
  });
}

export function hostTokens() {
  try { return JSON.parse(localStorage.getItem(HOST_KEY)) || null; } catch { return null; }
}

export function saveHostTokens(tokens) {
  if (tokens) localStorage.setItem(HOST_KEY, JSON.stringify(tokens));
  else localStorage.removeItem(HOST_KEY);
}

export function guestToken(sessionId) {
  return sessionStorage.getItem(`vidivo.guest.${sessionId}`);
}

export function saveGuestToken(sessionId, token) {
  sessionStorage.setItem(`vidivo.guest.${sessionId}`, token);
}

async function send(method, path, token, body, headers) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  return { response, data };
}

// One refresh at a time: a refresh token is single-use (reuse ends the sign-in), so requests
// that hit 401 together must share one refresh rather than race with the same token.
let refreshing = null;

function refreshHost() {
  if (!refreshing) refreshing = refreshOnce().finally(() => { refreshing = null; });
  return refreshing;
}

async function refreshOnce() {
  const tokens = hostTokens();
  if (!tokens || !tokens.refresh_token) return null;
  const { response, data } = await send("POST", "/v1/auth/refresh", null, {
    refresh_token: tokens.refresh_token,
  });
  if (!response.ok) { saveHostTokens(null); return null; }
  saveHostTokens(data);
  return data.access_token;
}

// One API call; `token` is a guest token, or "host" for the signed-in host (refreshed once on 401).
export async function api(method, path, { token, body, headers } = {}) {
  let bearer = token === "host" ? hostTokens()?.access_token : token;
  let { response, data } = await send(method, path, bearer, body, headers);
  if (response.status === 401 && token === "host") {
    bearer = await refreshHost();
    if (bearer) ({ response, data } = await send(method, path, bearer, body, headers));
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function currentHostAccessToken() {
  return hostTokens()?.access_token || null;
}

// Seconds until a JWT expires, read from its payload (not verified: only to decide when to refresh).
function secondsLeft(jwt) {
  try {
    const payload = JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.exp - Date.now() / 1000;
  } catch {
    return 0;
  }
}

// An access token for a long-lived socket: the current one while it has a minute left, else a
// refreshed one. Refreshing only when needed matters: each refresh rotates the single-use
// refresh token, and one whose answer is lost (the page navigated away) ends the sign-in.
export async function freshHostAccessToken() {
  const current = currentHostAccessToken();
  if (current && secondsLeft(current) > 60) return current;
  return (await refreshHost()) || currentHostAccessToken();
}

export { refreshHost };

// "2.50" → 250: decimal strings from the API, never floats.
export function toCents(amount) {
  const [whole, fraction = ""] = String(amount).split(".");
  return Number(whole) * 100 + Number((fraction + "00").slice(0, 2));
}

export function formatCents(cents) {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  return `${sign}$${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}
