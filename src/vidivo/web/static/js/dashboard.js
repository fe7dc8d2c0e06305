// The host dashboard: account, verification, payouts, links, incoming calls, history, earnings.
import {
  api, currentHostAccessToken, el, explain, hostTokens, onSubmit, refreshHost, saveHostTokens,
  socketUrl,
} from "./api.js";
import { showAccount } from "./account.js";

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

async function loadSessions() {
  const { sessions } = await api("GET", "/v1/sessions?limit=20", { token: "host" });
  $("session-rows").replaceChildren(...sessions.map((s) => {
    const actions = el("div", { class: "row" });
    if (["live", "paused", "waiting_for_host"].includes(s.state) && s.state !== "waiting_for_host") {
      actions.append(el("a", { class: "button", href: `/call/${s.id}` }, "Rejoin"));
    }
    if (s.went_live_at) {
      actions.append(el("button", { type: "button", class: "secondary", onclick: () => showReceipt(s.id) }, "Receipt"));
    }
    return el("tr", {}, el("td", {}, s.guest_name), el("td", {}, s.state.replaceAll("_", " ")),
      el("td", {}, `$${s.billed}`), el("td", {}, actions));
  }));
}

async function showReceipt(sessionId) {
  const { receipt } = await api("GET", `/v1/sessions/${sessionId}/receipt`, { token: "host" });
  const view = $("receipt-view");
  view.replaceChildren(
    el("h3", {}, `Receipt: ${receipt.guest_name}`),
    el("p", {}, `${receipt.billed_minutes} minute(s) at $${receipt.rate_per_minute}: $${receipt.total_charged} charged` +
      (receipt.refunded !== "0.00" ? `, $${receipt.refunded} refunded` : "") + "."),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Window"), el("th", {}, "Held"), el("th", {}, "Charged"), el("th", {}, "Released"))),
      el("tbody", {}, ...receipt.windows.map((w) => el("tr", {}, el("td", {}, String(w.number)), el("td", {}, `$${w.held}`), el("td", {}, `$${w.captured}`), el("td", {}, `$${w.released}`))))));
  view.classList.remove("hidden");
  view.scrollIntoView({ block: "nearest" });
}

async function loadEarnings() {
  const earnings = await api("GET", "/v1/earnings", { token: "host" });
  $("earnings").textContent = `${earnings.sessions} paid call(s): $${earnings.gross} gross, ` +
    `$${earnings.platform_fees} platform fees, $${earnings.refunds} refunded, $${earnings.net} to you.`;
}

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

// The card goes as soon as the call stops waiting (answered here, cancelled, expired).
function dropIncoming(sessionId) {
  const item = document.querySelector(`#incoming-list [data-session-id="${sessionId}"]`);
  if (item) item.remove();
  if (!$("incoming-list").children.length) $("incoming").classList.add("hidden");
}

function incomingCall(sessionId) {
  $("incoming").classList.remove("hidden");
  const item = el("li", { "data-session-id": sessionId });
  const accept = el("button", { type: "button" }, "Accept");
  const decline = el("button", { type: "button", class: "danger" }, "Decline");
  accept.addEventListener("click", async () => {
    try { await api("POST", `/v1/sessions/${sessionId}/accept`, { token: "host" }); location.assign(`/call/${sessionId}`); } catch (error) { flash(explain(error), "warning"); item.remove(); }
  });
  decline.addEventListener("click", async () => {
    try { await api("POST", `/v1/sessions/${sessionId}/decline`, { token: "host" }); } catch (error) { flash(explain(error), "warning"); }
    dropIncoming(sessionId);
    await loadSessions();
  });
  api("GET", `/v1/sessions/${sessionId}`, { token: "host" }).then(({ session }) => {
    item.prepend(el("p", {}, `${session.guest_name} is calling ($${session.rate_per_minute} / min).`));
  }).catch(() => item.prepend(el("p", {}, "A guest is calling.")));
  item.append(el("div", { class: "row" }, accept, decline));
  $("incoming-list").append(item);
  loadSessions();
}

async function listen() {
  if (events && events.readyState <= WebSocket.OPEN) return;
  const token = (await refreshHost()) || currentHostAccessToken();
  if (!token) return;
  events = new WebSocket(socketUrl(`/v1/host/events?token=${encodeURIComponent(token)}`));
  const pinger = setInterval(() => events.readyState === WebSocket.OPEN && events.send('{"type":"ping"}'), 10000);
  events.onopen = () => { document.body.dataset.listening = "true"; };
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "incoming_call") incomingCall(event.session_id);
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
  // Calls that started while the dashboard was closed still wait for an answer.
  const { sessions } = await api("GET", "/v1/sessions?state=waiting_for_host", { token: "host" });
  for (const s of sessions) if (!document.querySelector(`#incoming-list [data-session-id="${s.id}"]`)) incomingCall(s.id);
  // The "a guest is waiting" email links here: bring the waiting call into view.
  if (location.hash === "#incoming" && sessions.length) $("incoming").scrollIntoView();
}

show();
