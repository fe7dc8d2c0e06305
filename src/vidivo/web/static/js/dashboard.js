// The host dashboard: account, verification, payouts, links, incoming calls, history, earnings.
import {
  api, el, explain, freshHostAccessToken, hostTokens, onSubmit, saveHostTokens,
  socketUrl,
} from "./api.js";
import { showAccount } from "./account.js";
import { initEarnings, loadEarnings } from "./earnings.js";
import { initHistory, loadHistory } from "./history.js";
import { dropIncoming, initIncoming, showIncoming, showWaitingCalls } from "./incoming.js";
import { initLinks, loadLinks } from "./links.js";
import {
  initSetup, loadPayouts, refreshSetup, returnNotice, showSetup, verifyFromLink,
} from "./setup.js";
import { labelTables } from "./tables.js";

const $ = (id) => document.getElementById(id);
let events = null;

// One notice at the top: "ok" (information), "success" or "warning"; text or a few nodes.
function flash(content, kind = "ok") {
  const classes = { ok: "notice", success: "success", warning: "warning" };
  const children = Array.isArray(content) ? content : [el("p", {}, content)];
  $("flash").replaceChildren(el("div", { class: classes[kind] || "notice" }, ...children));
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
  flash(`Account created. We sent a verification link to ${email}: open it to verify your email.`);
});

$("sign-out").addEventListener("click", async () => {
  try { await api("POST", "/v1/auth/logout", { token: "host" }); } catch { /* signed out anyway */ }
  saveHostTokens(null);
  if (events) events.close();
  location.assign("/app");
});

const loadSessions = () => loadHistory();
initIncoming({ flash, onCallsChanged: () => loadSessions().catch(() => {}) });
initHistory({ flash, onMoneyChanged: () => loadEarnings().catch(() => {}) });
initEarnings({ flash });

async function listen() {
  if (events && events.readyState <= WebSocket.OPEN) return;
  const token = await freshHostAccessToken();
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
  // The emailed link verifies on opening, signed in or not; then the page shows the result.
  await verifyFromLink(flash);
  let me;
  try {
    me = hostTokens() ? (await api("GET", "/v1/me", { token: "host" })).user : null;
  } catch { me = null; }
  $("signed-out").classList.toggle("hidden", Boolean(me));
  $("signed-in").classList.toggle("hidden", !me);
  $("sign-out").classList.toggle("hidden", !me);
  if (!me) { saveHostTokens(null); $("who").textContent = ""; return; }
  $("who").textContent = me.display_name;
  showAccount(me);
  showAvailability(me.away, me.away ? "away" : "available");
  await Promise.all([loadPayouts(), loadLinks(), loadSessions(), loadEarnings()].map((p) => p.catch((error) => flash(explain(error), "warning"))));
  await showSetup(me);
  await listen();
  // Calls that started while the dashboard was closed still wait for an answer (the sheet
  // stays on screen: the "a guest is waiting" email's #incoming needs no scrolling).
  await showWaitingCalls();
}

initLinks({ flash, onCreated: () => refreshSetup() });
initSetup({ flash, refresh: () => show() });
labelTables();
returnNotice(flash);
show();
