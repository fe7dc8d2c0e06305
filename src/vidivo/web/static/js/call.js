// The call screen, for host and guest: the session's state from the API, signaling, the
// controls, the waiting countdown, renewals and the declined card. Media and network quality
// are in call_media.js, the chat in call_chat.js, the end screen in call_end.js.
import {
  api, ApiError, currentHostAccessToken, explain, formatCents, formatDuration, guestToken,
  freshHostAccessToken, socketUrl, toCents,
} from "./api.js";
import { answerTheBank, confirmPayment } from "./authentication.js";
import { explainMediaError, openMedia, savedChoice, useSpeaker } from "./devices.js";
import { createChat } from "./call_chat.js";
import { endReason, showEnd } from "./call_end.js";
import { createPeer, openChannel, watchNetwork } from "./call_media.js";

const root = document.getElementById("call");
const sessionId = root.dataset.sessionId;
const ownGuestToken = guestToken(sessionId);
const role = ownGuestToken ? "guest" : "host";
const auth = ownGuestToken || "host";
const $ = (id) => document.getElementById(id);

const PING_EVERY_MS = 10000;
const FINAL = ["ended", "declined", "expired"];
let snapshot = null;        // the last session from the API
let snapshotAt = 0;         // performance.now() when it arrived
let minuteShown = 0;        // the started minute whose cost is on screen
let clockOffsetMs = 0;      // server clock minus this browser's clock
let pc = null;
let channel = null;         // the data channel: media state and chat, peer to peer
let localStream = null;
let socket = null;
let pendingCandidates = [];
let ended = false;
let declinedDeadline = null;
let rtcConfig = null;
let firstHoldCents = null;  // the first window's hold, for the waiting guest
const names = { hostName: "", guestName: "" };
// Media is sent only while the call is live: both clients stop it while paused, so a pause
// is a pause for the people in it too (the server bills by the rule the guest page states).
const userTurnedOff = { audio: false, video: false };
let mediaPaused = false;

function setStatus(text) { $("call-status").textContent = text; }

function serverNow() { return Date.now() + clockOffsetMs; }

function otherName() {
  return role === "guest" ? names.hostName || "the host" : names.guestName || "the guest";
}

// Where the guest came from (/c/{code}): the end screen offers it again. Kept for reloads.
function linkCode() {
  const key = `vidivo.link.${sessionId}`;
  try {
    const from = document.referrer ? new URL(document.referrer) : null;
    const match = from && from.origin === location.origin && from.pathname.match(/^\/c\/([A-Za-z0-9_-]+)$/);
    if (match) sessionStorage.setItem(key, match[1]);
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

async function refresh() {
  try {
    const { session } = await api("GET", `/v1/sessions/${sessionId}`, { token: auth });
    snapshot = session;
    snapshotAt = performance.now();
    minuteShown = Math.floor(session.live_seconds / 60);
    clockOffsetMs = Date.parse(session.as_of) - Date.now();
    names.guestName = session.guest_name;
    if (!session.hold_declined) hideDeclined();
    setMediaPaused(session.state === "paused");
    describe(session);
    if (FINAL.includes(session.state)) await finish(session);
  } catch (error) {
    setStatus(error instanceof ApiError ? error.message : "Cannot reach Vidivo; retrying…");
  }
}

// The host's name and the first hold come with the receipt (the session view has neither).
async function loadReceipt() {
  try {
    const { receipt } = await api("GET", `/v1/sessions/${sessionId}/receipt`, { token: auth });
    names.hostName = receipt.host_display_name;
    names.guestName = receipt.guest_name;
    if (receipt.windows.length) firstHoldCents = toCents(receipt.windows[0].held);
    return receipt;
  } catch (error) {
    console.warn("no receipt yet", error);
    return null;
  }
}

function phaseOf(state) {
  if (FINAL.includes(state)) return "ended";
  if (state === "pending_payment" || state === "waiting_for_host") return "waiting";
  return "live";
}

function describe(session) {
  const other = otherName();
  const phase = phaseOf(session.state);
  if (!ended) root.dataset.phase = phase;
  $("call-title").textContent = `Video call with ${other}`;
  $("call-with").textContent = phase === "live" ? `Live with ${other}` : `Call with ${other}`;
  $("remote-initial").textContent = other.trim().charAt(0).toUpperCase();
  $("waiting").classList.toggle("hidden", phase !== "waiting");
  // Before the call is live, hanging up cancels it (nothing is charged then).
  const cancels = phase === "waiting";
  $("hang-up").setAttribute("aria-label", cancels ? "Cancel the call" : "Hang up");
  $("hang-up-caption").textContent = cancels ? "Cancel" : "Hang up";
  if (!ended) document.title = `${phase === "live" ? `Live with ${other}` : `Call with ${other}`} · Vidivo`;
  if (phase === "waiting") describeWaiting(session);
  const text = {
    pending_payment: "Holding the first window on the card…",
    waiting_for_host: role === "guest" ? "Waiting for the host to join…" : `Connecting to ${other}…`,
    live: `Live with ${other}.`,
    paused: pausedText(session, other),
    ending: "The call is ending…",
  }[session.state];
  if (text) setStatus(text);
  // Plainly live, the top bar says it already; the status stays for screen readers.
  $("call-status").classList.toggle("visually-hidden", session.state === "live");
  const cap = session.max_spend;
  $("spending-limit").classList.toggle("hidden", !cap || phase !== "live");
  if (cap) $("spending-limit").textContent = `Limit $${cap} · $${session.billed} so far`;
}

function describeWaiting(session) {
  if (role === "host") {
    $("waiting-heading").textContent = `Connecting to ${otherName()}…`;
    $("waiting-next").replaceChildren();
    return;
  }
  $("waiting-heading").textContent = session.state === "pending_payment"
    ? "Placing the hold on your card…" : `Waiting for ${otherName()} to join`;
  const rate = `$${session.rate_per_minute}`;
  const steps = [
    `When ${otherName()} joins, the call starts here and billing begins: ${rate} a minute, per started minute.`,
    "You can keep this page open and get your camera ready; nothing is charged while you wait.",
    "If the host declines or does not join in time, the hold is released and nothing is charged.",
  ];
  $("waiting-next").replaceChildren(...steps.map((s) => {
    const item = document.createElement("li");
    item.textContent = s;
    return item;
  }));
}

function pausedText(session, other) {
  const grace = session.terms.reconnect_grace_seconds;
  const media = "Your camera and microphone are paused until the call resumes.";
  if (session.away === "host") {
    return `Paused: ${role === "host" ? "your" : `${other}'s`} connection dropped. `
      + `Time while the host is away is not billed. ${media}`;
  }
  const who = role === "guest" ? "your" : `${other}'s`;
  return `Paused: ${who} connection dropped. If it is back within ${grace} s, the time in `
    + `between is billed; otherwise the call ends and billing stops at the drop. ${media}`;
}

function applyMediaState() {
  for (const track of localStream ? localStream.getTracks() : []) {
    track.enabled = !mediaPaused && !userTurnedOff[track.kind];
  }
  root.dataset.media = mediaPaused ? "paused" : "sending";
  sendMediaState();
}

function setMediaPaused(paused) {
  if (paused === mediaPaused) return;
  mediaPaused = paused;
  applyMediaState();
}

function hasVideo() { return Boolean(localStream && localStream.getVideoTracks().length); }

// The other side sees our state: muted, camera off (an audio-only call has no camera at all).
function sendMediaState() {
  sendPeer({ type: "media", audio: !userTurnedOff.audio, video: hasVideo() && !userTurnedOff.video });
}

function sendPeer(message) {
  if (!channel || channel.readyState !== "open") return false;
  channel.send(JSON.stringify(message));
  return true;
}

function showPeerMedia(message) {
  const other = otherName();
  const off = [];
  if (message.audio === false) off.push("muted");
  if (message.video === false) off.push("camera off");
  $("peer-media").textContent = off.length ? `${other}: ${off.join(", ")}` : "";
  root.dataset.remoteVideo = message.video === false ? "off" : "on";
}

// Live figures between API snapshots: the time runs on while live, the cost follows the minutes.
function tick() {
  if (!snapshot) return;
  const running = snapshot.state === "live" && !ended;
  const seconds = snapshot.live_seconds + (running ? (performance.now() - snapshotAt) / 1000 : 0);
  $("live-timer").textContent = formatDuration(seconds);
  // The cost is the server's (its meter and the call's terms decide it): a new started
  // minute is fetched when the timer passes one, never computed here.
  $("running-cost").textContent = formatCents(toCents(snapshot.billed));
  const minute = Math.floor(seconds / 60);
  if (running && minute > minuteShown) {
    minuteShown = minute;
    refresh();
  }
  const renewal = snapshot.next_renewal_at && snapshot.next_hold && running;
  $("next-hold").classList.toggle("hidden", !renewal);
  if (renewal) {
    $("next-hold-amount").textContent = `$${snapshot.next_hold}`;
    $("renewal-countdown").textContent = formatDuration((Date.parse(snapshot.next_renewal_at) - serverNow()) / 1000);
  } else {
    $("renewal-countdown").textContent = "–";
  }
  if (snapshot.join_deadline && role === "guest" && !ended) {
    const left = formatDuration((Date.parse(snapshot.join_deadline) - serverNow()) / 1000);
    const hold = firstHoldCents ? formatCents(firstHoldCents) : "card";
    const countdown = $("join-countdown");
    const strong = document.createElement("strong");
    strong.textContent = left;
    countdown.replaceChildren(`${names.hostName || "The host"} has `, strong,
      ` to join; your ${hold} hold is released otherwise.`);
  }
  if (declinedDeadline) {
    const left = Math.max(0, (Date.parse(declinedDeadline) - serverNow()) / 1000);
    $("declined-text").dataset.secondsLeft = String(Math.floor(left));
  }
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

async function iceConfig() {
  const servers = await api("GET", `/v1/sessions/${sessionId}/ice-servers`, { token: auth });
  return { iceServers: servers.ice_servers, iceTransportPolicy: servers.ice_transport_policy };
}

// Relay credentials last as long as the paid time: each renewal brings fresh ones.
async function renewRelayCredentials() {
  try {
    rtcConfig = await iceConfig();
    pc?.setConfiguration(rtcConfig);
  } catch (error) {
    console.warn("could not renew relay credentials", error);
  }
}

function useChannel(opened) {
  channel = opened;
  channel.onopen = () => { chat.setReady(true); sendMediaState(); };
  channel.onclose = () => { if (channel === opened) chat.setReady(false); };
  channel.onmessage = (event) => {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "media") showPeerMedia(message);
    else if (message.type === "chat") chat.receive(message);
  };
}

function newPeer() {
  if (pc) pc.close();
  pendingCandidates = [];
  pc = createPeer(rtcConfig, localStream, {
    onTrack: (stream) => { $("remote-video").srcObject = stream; },
    onCandidate: (candidate) => send({ type: "ice", candidate }),
    onState: (state) => { root.dataset.connection = state; },
    onChannel: useChannel,
  });
  window.vidivoCall.pc = pc;
  return pc;
}

async function makeOffer() {
  const peer = newPeer();
  useChannel(openChannel(peer));
  await peer.setLocalDescription(await peer.createOffer());
  send({ type: "offer", sdp: peer.localDescription.sdp });
}

async function onOffer(sdp) {
  const peer = newPeer();
  await peer.setRemoteDescription({ type: "offer", sdp });
  await flushCandidates();
  await peer.setLocalDescription(await peer.createAnswer());
  send({ type: "answer", sdp: peer.localDescription.sdp });
}

async function flushCandidates() {
  for (const candidate of pendingCandidates.splice(0)) await pc.addIceCandidate(candidate);
}

async function onCandidate(candidate) {
  if (pc && pc.remoteDescription) await pc.addIceCandidate(candidate);
  else pendingCandidates.push(candidate);
}

function showDeclined(event) {
  declinedDeadline = event.deadline;
  const when = event.deadline ? new Date(Date.parse(event.deadline) - clockOffsetMs).toLocaleTimeString() : "soon";
  const bankAsks = event.decline_code === "authentication_required";
  $("declined-text").textContent = role === "guest"
    ? (bankAsks
      ? `Your card's bank asks you to confirm the next hold of $${event.amount}. Enter your card again below before ${when} and confirm it, or the call ends then.`
      : `Your card was declined for the next hold of $${event.amount}. Add another card before ${when} or the call ends then.`)
    : `The guest's card was declined for the next hold of $${event.amount}. The call ends at ${when} unless they add another card.`;
  $("declined").classList.remove("hidden");
}

function hideDeclined() {
  declinedDeadline = null;
  $("declined").classList.add("hidden");
}

async function onEvent(event) {
  switch (event.type) {
    case "welcome":
      if (role === "guest" && event.peer_present) await makeOffer();
      break;
    case "peer_joined":
      if (role === "guest" && event.from === "host") await makeOffer();
      break;
    case "offer": await onOffer(event.sdp); break;
    case "answer": await pc?.setRemoteDescription({ type: "answer", sdp: event.sdp }); await flushCandidates(); break;
    case "ice": await onCandidate(event.candidate); break;
    case "hold_declined": showDeclined(event); await refresh(); break;
    case "card_updated": hideDeclined(); await refresh(); break;
    case "ended": await refresh(); break;
    case "window_renewed": await Promise.all([renewRelayCredentials(), refresh()]); break;
    case "pong": break;
    default: await refresh();  // went_live, paused, resumed, window_renewed, ending, peer_left…
  }
}

async function connect() {
  if (ended) return;
  const token = role === "guest" ? ownGuestToken : await freshHostAccessToken();
  socket = new WebSocket(socketUrl(`/v1/sessions/${sessionId}/signal?token=${encodeURIComponent(token)}`));
  const pinger = setInterval(() => send({ type: "ping" }), PING_EVERY_MS);
  socket.onmessage = (message) => onEvent(JSON.parse(message.data)).catch((error) => console.error(error));
  socket.onclose = (close) => {
    clearInterval(pinger);
    if (ended || close.code === 4410 || close.code === 4403) { refresh(); return; }
    setTimeout(connect, 2000);  // dropped: come back; billing pauses meanwhile
  };
}

// The end screen replaces the video; its figures are the receipt's (the same after a reload).
async function finish(session) {
  if (ended) return;
  ended = true;
  hideDeclined();
  if (socket) socket.close();
  if (pc) pc.close();
  if (localStream) for (const track of localStream.getTracks()) track.stop();
  root.dataset.phase = "ended";
  $("call-status").classList.remove("visually-hidden");
  $("stage").classList.add("hidden");
  $("chat").classList.add("hidden");
  $("end-screen").classList.remove("hidden");
  setStatus(endReason(session, { role, ...names }));
  const receipt = await loadReceipt();
  showEnd(session, receipt, { role, ...names, linkCode: role === "guest" ? linkCode() : null });
  // The status element moved into the end screen: it is the reason, read first.
  $("end-heading").after($("call-status"));
  document.title = `${$("end-heading").textContent} · Vidivo`;
  $("end-heading").focus({ preventScroll: true });
}

function toggleTrack(kind, button, caption, onWords, offWords) {
  const off = button.getAttribute("aria-pressed") !== "true";
  userTurnedOff[kind] = off;
  button.setAttribute("aria-pressed", String(off));
  $(caption).textContent = off ? offWords : onWords;
  if (kind === "video") root.dataset.camera = off ? "off" : "on";
  applyMediaState();
}

$("mute").addEventListener("click", (e) => toggleTrack("audio", e.currentTarget, "mute-caption", "Mic on", "Muted"));
$("camera").addEventListener("click", (e) => toggleTrack("video", e.currentTarget, "camera-caption", "Camera on", "Camera off"));
$("hang-up").addEventListener("click", async () => {
  $("hang-up").disabled = true;
  send({ type: "hangup" });
  try {
    await api("POST", `/v1/sessions/${sessionId}/end`, { token: auth });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) { $("hang-up").disabled = false; setStatus(error.message); return; }
  }
  await refresh();
});

const chat = createChat({ root, send: sendPeer, otherName });

// With real Stripe the replacement card is entered in Stripe's Payment Element too.
let stripe = null;
let cardElements = null;
if (root.dataset.payments === "stripe" && window.Stripe && role === "guest") {
  stripe = window.Stripe(root.dataset.publishableKey);
  cardElements = stripe.elements({
    mode: "payment", amount: 100, currency: "usd", captureMethod: "manual",
    setupFutureUsage: "off_session", paymentMethodCreation: "manual",
  });
  cardElements.create("payment").mount("#new-card-element");
}

async function newPaymentMethodId() {
  if (!stripe) return $("new-card").value;
  const { error: incomplete } = await cardElements.submit();
  if (incomplete) throw new Error(incomplete.message);
  const { paymentMethod, error } = await stripe.createPaymentMethod({ elements: cardElements });
  if (error) throw new Error(error.message);
  return paymentMethod.id;
}

$("card-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("card-error").textContent = "";
  try {
    const answer = await api("POST", `/v1/sessions/${sessionId}/payment-method`, {
      token: auth, body: { payment_method_id: await newPaymentMethodId() },
    });
    if (answer.authentication) {
      const here = await answerTheBank(answer.authentication, { stripe, returnTo: `/call/${sessionId}` });
      if (!here) return;  // off to the bank's page; this page confirms when the guest is back
      await confirmPayment(sessionId, auth);
    }
    await refresh();
  } catch (error) {
    $("card-error").textContent = explain(error);
  }
});

// Back from the card's bank: the waiting hold is settled before the call goes on.
async function confirmHold() {
  try {
    await confirmPayment(sessionId, auth);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    $("card-error").textContent = error.explanation;
  }
  await refresh();
  if (snapshot?.state === "declined") setStatus("Your card's bank did not confirm the payment. Nothing was charged.");
}

function showNetwork({ word, rttMs, lossPercent }) {
  $("network").dataset.quality = word;
  const detail = rttMs === null ? "" : ` (${rttMs} ms, ${lossPercent.toFixed(1)} % lost)`;
  $("network-text").textContent = `Network: ${word}`;
  $("network").title = `Round trip and packets lost${detail}`;
}

async function main() {
  window.vidivoCall = { role, pc: null, refresh, snapshot: () => snapshot };
  if (role === "guest") linkCode();  // remembered while the referrer is the link's page
  if (role === "host") for (const node of document.querySelectorAll(".guest-only")) node.classList.add("hidden");
  if (role === "host" && !currentHostAccessToken()) {
    setStatus("This call belongs to a host account: open it from the dashboard on the device you use for Vidivo.");
    return;
  }
  await loadReceipt();
  await refresh();
  if (role === "guest" && snapshot?.awaiting_authentication) await confirmHold();
  if (ended) return;
  setInterval(tick, 250);
  tick();
  const audioOnly = savedChoice().audioOnly;
  try {
    localStream = await openMedia();
  } catch (error) {
    setStatus(explainMediaError(error));
    return;
  }
  await useSpeaker($("remote-video"));
  $("local-video").srcObject = localStream;
  if (audioOnly || !hasVideo()) {
    root.dataset.camera = "off";
    $("camera").disabled = true;
    $("camera").setAttribute("aria-pressed", "true");
    $("camera-caption").textContent = "Audio only";
    $("self-audio-only").classList.remove("hidden");
    $("local-video").classList.add("hidden");
  }
  applyMediaState();
  rtcConfig = await iceConfig();
  setInterval(refresh, 15000);
  watchNetwork(() => pc, hasVideo, showNetwork);
  await connect();
}

main();
