// An incoming call rings: a sound (made here with WebAudio, no audio file), "(1) Incoming call"
// in the tab's title, a browser notification when the host allowed them, and a sheet fixed on
// screen wherever the host has scrolled. Accept opens a device check in the sheet; "Join now"
// accepts and opens the call.
import { api, el, explain, formatDuration } from "./api.js";
import * as devices from "./devices.js";

const $ = (id) => document.getElementById(id);
const calls = new Map(); // session id → { item, deadline (performance.now() ms), notice, answering }
const baseTitle = document.title;
let flash = () => {};
let onCallsChanged = () => {};
let ticker = null;

// ---- The ring: a two-tone phone ring, 1.2 s on, 1.8 s off, until nothing is ringing. ----
const RING_EVERY_MS = 3000;
let audio = null;
let ringTimer = null;

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!audio && Context) audio = new Context();
  return audio;
}

// Browsers start sound only after a click or key press on the page: take the first one.
function unlockAudio() {
  const context = audioContext();
  if (context && context.state === "suspended") context.resume().then(updateRing, () => {});
  else updateRing();
}

function ringOnce() {
  const context = audio;
  if (!context || context.state !== "running") return;
  const start = context.currentTime;
  const gain = context.createGain();
  gain.gain.setValueAtTime(0, start);
  for (let burst = 0; burst < 2; burst += 1) { // two short bursts, like a phone
    const at = start + burst * 0.6;
    gain.gain.linearRampToValueAtTime(0.15, at + 0.02);
    gain.gain.setValueAtTime(0.15, at + 0.4);
    gain.gain.linearRampToValueAtTime(0, at + 0.45);
  }
  gain.connect(context.destination);
  for (const frequency of [440, 480]) {
    const tone = context.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(gain);
    tone.start(start);
    tone.stop(start + 1.2);
  }
}

function ringingCalls() {
  return [...calls.values()].filter((call) => !call.answering).length;
}

function updateRing() {
  const wanted = ringingCalls() > 0;
  const running = Boolean(audio && audio.state === "running");
  $("ring-blocked").classList.toggle("hidden", !wanted || running);
  if (wanted && running && !ringTimer) {
    ringOnce();
    ringTimer = setInterval(ringOnce, RING_EVERY_MS);
  }
  if ((!wanted || !running) && ringTimer) { clearInterval(ringTimer); ringTimer = null; }
  document.body.dataset.ringing = !wanted ? "false" : running ? "true" : "blocked";
}

// ---- The title badge and the browser notification. ----
function updateTitle() {
  const count = calls.size;
  document.title = count ? `(${count}) Incoming call${count > 1 ? "s" : ""} · Vidivo` : baseTitle;
}

function notify(sessionId, session) {
  if (!("Notification" in window) || Notification.permission !== "granted") return null;
  try {
    const notice = new Notification(`${session.guest_name} is calling`, {
      body: `${linkName(session)} · $${session.rate_per_minute} / min`,
      tag: `vidivo-call-${sessionId}`,
      requireInteraction: true,
    });
    notice.onclick = () => { window.focus(); calls.get(sessionId)?.item.querySelector("button")?.focus(); };
    return notice;
  } catch { return null; } // some browsers allow notifications from a service worker only
}

function showNotificationButton() {
  const button = $("enable-notifications");
  const can = "Notification" in window && Notification.permission === "default";
  button.classList.toggle("hidden", !can);
  if ("Notification" in window && Notification.permission === "granted") {
    $("alerts-status").textContent = "An incoming call rings here, shows in the tab's title and as a notification.";
  } else if ("Notification" in window && Notification.permission === "denied") {
    $("alerts-status").textContent = "An incoming call rings here and shows in the tab's title. Notifications are blocked in this browser's site settings.";
  }
}

// ---- The sheet. ----
function linkName(session) {
  return session.link_label || `Link ${session.link_code}`;
}

function timeLeftText(call) {
  const left = Math.max(0, (call.deadline - performance.now()) / 1000);
  return `${formatDuration(left)} left to join`;
}

function tick() {
  for (const call of calls.values()) {
    const timer = call.item.querySelector(".incoming-left");
    if (timer && call.deadline) timer.textContent = timeLeftText(call);
  }
}

function updateAll() {
  $("incoming").classList.toggle("hidden", calls.size === 0);
  document.body.classList.toggle("has-incoming", calls.size > 0);
  updateTitle();
  updateRing();
  if (calls.size && !ticker) ticker = setInterval(tick, 1000);
  if (!calls.size && ticker) { clearInterval(ticker); ticker = null; }
}

async function accept(sessionId) {
  await api("POST", `/v1/sessions/${sessionId}/accept`, { token: "host" });
  location.assign(`/call/${sessionId}`);
}

async function decline(sessionId) {
  try { await api("POST", `/v1/sessions/${sessionId}/decline`, { token: "host" }); } catch (error) { flash(explain(error), "warning"); }
  dropIncoming(sessionId);
  onCallsChanged();
}

function answerButtons(sessionId, session) {
  const acceptButton = el("button", { type: "button", class: "accept" }, "Accept");
  const declineButton = el("button", { type: "button", class: "danger" }, "Decline");
  acceptButton.addEventListener("click", () => openDeviceCheck(sessionId, session));
  declineButton.addEventListener("click", () => decline(sessionId));
  return el("div", { class: "row incoming-actions" }, acceptButton, declineButton);
}

// Accept: the camera and microphone are checked here first, then "Join now" takes the call.
function openDeviceCheck(sessionId, session) {
  const call = calls.get(sessionId);
  if (!call) return;
  call.answering = true;
  updateRing();
  const container = el("div", { class: "incoming-device-check" });
  const join = el("button", { type: "button", class: "accept" }, "Join now");
  const back = el("button", { type: "button", class: "secondary" }, "Back");
  const error = el("p", { class: "error", role: "alert" });
  const check = el("div", { class: "incoming-check", role: "group", "aria-label": "Check your camera and microphone" },
    el("h3", {}, "Check your camera and microphone"), container, error,
    el("div", { class: "row incoming-actions" }, join, back));
  let mounted = null;
  try { mounted = devices.mountDeviceCheck?.(container); } catch { mounted = null; }
  if (!container.childElementCount) {
    container.append(el("p", { class: "note" }, "Your camera and microphone open when the call does."));
  }
  join.addEventListener("click", async () => {
    join.disabled = true;
    try { await accept(sessionId); } catch (failure) {
      error.textContent = explain(failure);
      join.disabled = false;
    }
  });
  back.addEventListener("click", () => {
    stopCheck(mounted);
    call.answering = false;
    check.replaceWith(answerButtons(sessionId, session));
    updateRing();
  });
  call.item.querySelector(".incoming-actions").replaceWith(check);
  join.focus();
}

function stopCheck(mounted) {
  Promise.resolve(mounted).then((handle) => {
    if (typeof handle === "function") handle();
    else if (handle && typeof handle.stop === "function") handle.stop();
  }).catch(() => {});
}

function render(sessionId, session, asOf) {
  const call = calls.get(sessionId);
  if (!call || call.rendered) return;
  call.rendered = true;
  if (session.join_deadline) {
    const leftMs = Date.parse(session.join_deadline) - Date.parse(asOf); // the server's clock, not ours
    call.deadline = performance.now() + leftMs;
  }
  call.item.replaceChildren(
    el("p", { class: "incoming-who" }, el("strong", {}, session.guest_name), " is calling"),
    el("p", { class: "incoming-terms" }, `${linkName(session)} · $${session.rate_per_minute} / min`),
    el("p", { class: "incoming-left", role: "timer", "aria-live": "off" }, call.deadline ? timeLeftText(call) : ""),
    answerButtons(sessionId, session),
  );
  call.notice = notify(sessionId, session);
}

/** A call is waiting for the host: show it (once), ring, badge the title, notify. */
export async function showIncoming(sessionId) {
  if (calls.has(sessionId)) return;
  const item = el("li", { "data-session-id": sessionId, class: "incoming-call" },
    el("p", { class: "incoming-who" }, "A guest is calling"));
  calls.set(sessionId, { item, deadline: 0, notice: null, answering: false, rendered: false });
  $("incoming-list").append(item);
  updateAll();
  try {
    const page = await api("GET", "/v1/sessions?state=waiting_for_host&limit=100", { token: "host" });
    for (const session of page.sessions) render(session.id, session, session.as_of);
  } catch (error) { flash(explain(error), "warning"); }
}

/** The call stopped waiting (answered elsewhere, cancelled, timed out): it stops ringing. */
export function dropIncoming(sessionId) {
  const call = calls.get(sessionId);
  if (!call) return;
  call.item.remove();
  if (call.notice) call.notice.close();
  calls.delete(sessionId);
  updateAll();
}

/** Calls that started while the page was closed still wait: ring for them too. */
export async function showWaitingCalls() {
  const { sessions } = await api("GET", "/v1/sessions?state=waiting_for_host&limit=100", { token: "host" });
  for (const session of sessions) showIncoming(session.id);
  return sessions.length;
}

export function initIncoming(options) {
  flash = options.flash || flash;
  onCallsChanged = options.onCallsChanged || onCallsChanged;
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unlockAudio, { capture: true });
  $("enable-ringing").addEventListener("click", unlockAudio);
  $("enable-notifications").addEventListener("click", async () => {
    try { await Notification.requestPermission(); } catch { /* the answer is read below */ }
    showNotificationButton();
  });
  showNotificationButton();
  document.body.dataset.ringing = "false";
}
