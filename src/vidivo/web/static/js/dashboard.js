// The host dashboard: account, verification, payouts, links, incoming calls, history, earnings.
import {
  api, currentHostAccessToken, el, explain, hostTokens, onSubmit, refreshHost, saveHostTokens,
  socketUrl,
} from "./api.js";
import { showAccount } from "./account.js";
import { initEarnings, loadEarnings } from "./earnings.js";
import { initHistory, loadHistory } from "./history.js";
import { dropIncoming, initIncoming, showIncoming, showWaitingCalls } from "./incoming.js";

const $ = (id) => document.getElementById(id);
let linkCursor = null;
let events = null;

function flash(text, kind = "ok") {
  $("flash").replaceChildren(el("p", { class: kind === "ok" ? "notice" : "warning" }, text));
}

async function logIn(email, password) {
  saveHostTokens(await api("POST", "/v1/auth/token", { body: { email, password } }));
  await show();
}

onSubmit("login-form", "login-error", () => logIn($("login-email").value.trim(), $("login-password").value));

onSubmit("signup-form", "signup-error", async () => {
  const email = $("signup-email").value.trim();
  const password = $("signup-password").value;
  await api("POST", "/v1/auth/signup", {
    body: { email, password, display_name: $("signup-name").value.trim() },
  });
  await logIn(email, password);
  flash("Account created. Check your email for the verification token.");
});

onSubmit("verify-form", "verify-error", async () => {
  await api("POST", "/v1/auth/verify-email", { body: { token: $("verify-token").value.trim() } });
  flash("Email verified.");
  await show();
});

$("resend-verification").addEventListener("click", async () => {
  try {
    await api("POST", "/v1/auth/verify-email/resend", { token: "host" });
    flash("A new verification email is on its way.");
  } catch (error) { $("verify-error").textContent = explain(error); }
});

$("sign-out").addEventListener("click", async () => {
  try { await api("POST", "/v1/auth/logout", { token: "host" }); } catch { /* signed out anyway */ }
  saveHostTokens(null);
  if (events) events.close();
  location.assign("/app");
});

$("start-onboarding").addEventListener("click", async () => {
  try {
    const { url } = await api("POST", "/v1/host/payouts/onboarding", { token: "host" });
    location.assign(url);
  } catch (error) { flash(explain(error), "warning"); }
});

onSubmit("link-form", "link-error", async () => {
  const body = {
    rate_per_minute: $("link-rate").value.trim(),
    window_size_minutes: Number($("link-window").value),
  };
  if ($("link-max-uses").value) body.max_uses = Number($("link-max-uses").value);
  if ($("link-label").value.trim()) body.label = $("link-label").value.trim();
  const { link } = await api("POST", "/v1/links", {
    token: "host", body, headers: { "Idempotency-Key": crypto.randomUUID() },
  });
  $("link-rows").prepend(linkRow(link));
  flash(`Link created: ${link.url}`);
});

// How long "Copied" shows before the button reads "Copy" again.
const COPIED_FOR_MS = 2000;

function copyButton(link) {
  const copy = el("button", { type: "button", class: "secondary", "aria-label": `Copy link ${link.short_code}` }, "Copy");
  let reset = null;
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(link.url); copy.textContent = "Copied"; } catch { copy.textContent = "Select and copy"; }
    clearTimeout(reset);
    reset = setTimeout(() => { copy.textContent = "Copy"; }, COPIED_FOR_MS);
  });
  return copy;
}

// A deactivated link stays listed, marked, with nothing left to do to it.
function linkActions(link, row) {
  if (!link.is_active) return el("span", { class: "badge" }, "Inactive");
  const remove = el("button", { type: "button", class: "danger", "aria-label": `Deactivate link ${link.short_code}` }, "Deactivate");
  remove.addEventListener("click", async () => {
    if (!confirm(`Deactivate ${link.url}? Guests can no longer open it.`)) return;
    try {
      await api("DELETE", `/v1/links/${link.id}`, { token: "host" });
      row.replaceWith(linkRow({ ...link, is_active: false }));
      flash("Link deactivated.");
    } catch (error) { flash(explain(error), "warning"); }
  });
  return el("div", { class: "row" }, copyButton(link), remove);
}

function linkRow(link) {
  const uses = link.max_uses ? `${link.use_count} / ${link.max_uses}` : `${link.use_count}`;
  const row = el("tr", { "data-link-id": link.id, "data-active": String(link.is_active) },
    el("td", {}, el("a", { href: link.url }, link.url), link.label ? el("div", { class: "muted" }, link.label) : ""),
    el("td", {}, `$${link.rate_per_minute} / min, ${link.window_size_minutes}-min windows`),
    el("td", {}, uses));
  row.append(el("td", {}, linkActions(link, row)));
  return row;
}

async function loadLinks(more = false) {
  const query = new URLSearchParams({ limit: "20" });
  // Active links only unless the host asks for the deactivated ones as well.
  if (!$("show-inactive-links").checked) query.set("active", "true");
  if (more && linkCursor) query.set("cursor", linkCursor);
  const page = await api("GET", `/v1/links?${query}`, { token: "host" });
  const rows = page.links.map(linkRow);
  if (more) $("link-rows").append(...rows); else $("link-rows").replaceChildren(...rows);
  linkCursor = page.pagination.cursor;
  $("more-links").classList.toggle("hidden", !page.pagination.has_more);
}
$("more-links").addEventListener("click", () => loadLinks(true));
$("show-inactive-links").addEventListener("change", () => loadLinks().catch((error) => flash(explain(error), "warning")));

async function loadPayouts() {
  const status = await api("GET", "/v1/host/payouts", { token: "host" });
  const ready = status.charges_enabled && status.payouts_enabled;
  $("payout-status").textContent = ready
    ? "Your payout account is ready: guests can pay you."
    : status.stripe_connected
      ? `Payout setup is not finished (${status.requirements.join(", ") || "pending review"}).`
      : "Set up payouts to receive money and create call links.";
  $("payout-status").className = ready ? "ok" : "";
  $("start-onboarding").classList.toggle("hidden", ready);
}

const loadSessions = () => loadHistory();
initIncoming({ flash, onCallsChanged: () => loadSessions().catch(() => {}) });
initHistory({ flash, onMoneyChanged: () => loadEarnings().catch(() => {}) });
initEarnings({ flash });

async function listen() {
  if (events && events.readyState <= WebSocket.OPEN) return;
  const token = (await refreshHost()) || currentHostAccessToken();
  if (!token) return;
  events = new WebSocket(socketUrl(`/v1/host/events?token=${encodeURIComponent(token)}`));
  const pinger = setInterval(() => events.readyState === WebSocket.OPEN && events.send('{"type":"ping"}'), 10000);
  events.onopen = () => { document.body.dataset.listening = "true"; };
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "incoming_call") { showIncoming(event.session_id); loadSessions().catch(() => {}); }
    if (event.type === "incoming_call_gone") { dropIncoming(event.session_id); loadSessions().catch(() => {}); }
  };
  events.onclose = (close) => {
    clearInterval(pinger);
    document.body.dataset.listening = "false";
    if (close.code !== 4403 && hostTokens()) setTimeout(listen, 2000);
  };
}

// Guests see "Available now" while this page is open, "Away" when the host says so.
const AVAILABILITY_TEXT = {
  available: "Guests see you as available: they can start a call now.",
  offline: "Guests see you as offline: a call waits for you and you are emailed.",
  away: "Guests see you as away: nobody can start a call.",
};

function showAvailability(away, availability) {
  $("set-available").setAttribute("aria-pressed", String(!away));
  $("set-away").setAttribute("aria-pressed", String(away));
  $("availability-status").textContent = AVAILABILITY_TEXT[availability] || "";
}

async function setAway(away) {
  try {
    const { availability } = await api("PUT", "/v1/me/availability", { token: "host", body: { away } });
    showAvailability(away, availability);
  } catch (error) { flash(explain(error), "warning"); }
}

$("set-available").addEventListener("click", () => setAway(false));
$("set-away").addEventListener("click", () => setAway(true));

async function show() {
  let me;
  try {
    me = hostTokens() ? (await api("GET", "/v1/me", { token: "host" })).user : null;
  } catch { me = null; }
  $("signed-out").classList.toggle("hidden", Boolean(me));
  $("signed-in").classList.toggle("hidden", !me);
  $("sign-out").classList.toggle("hidden", !me);
  if (!me) { saveHostTokens(null); $("who").textContent = ""; return; }
  $("who").textContent = me.display_name;
  $("verify").classList.toggle("hidden", me.email_verified);
  showAccount(me);
  showAvailability(me.away, me.away ? "away" : "available");
  const token = new URLSearchParams(location.search).get("verify");
  if (token && !me.email_verified) $("verify-token").value = token;
  await Promise.all([loadPayouts(), loadLinks(), loadSessions(), loadEarnings()].map((p) => p.catch((error) => flash(explain(error), "warning"))));
  await listen();
  // Calls that started while the dashboard was closed still wait for an answer (the sheet
  // stays on screen: the "a guest is waiting" email's #incoming needs no scrolling).
  await showWaitingCalls();
}

show();
