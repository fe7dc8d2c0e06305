// The in-call view, for host and guest: WebRTC media, presence, live timer and cost, renewals.
import {
  api, ApiError, currentHostAccessToken, explain, formatCents, formatDuration, guestToken,
  refreshHost, socketUrl, toCents,
} from "./api.js";
import { answerTheBank, confirmPayment } from "./authentication.js";
import { explainMediaError, openMedia, useSpeaker } from "./devices.js";

const root = document.getElementById("call");
const sessionId = root.dataset.sessionId;
const ownGuestToken = guestToken(sessionId);
const role = ownGuestToken ? "guest" : "host";
const auth = ownGuestToken || "host";
const $ = (id) => document.getElementById(id);

const PING_EVERY_MS = 10000;
let snapshot = null;        // the last session from the API
let snapshotAt = 0;         // performance.now() when it arrived
let minuteShown = 0;        // the started minute whose cost is on screen
let clockOffsetMs = 0;      // server clock minus this browser's clock
let pc = null;
let localStream = null;
let socket = null;
let pendingCandidates = [];
let ended = false;
let declinedDeadline = null;
// Media is sent only while the call is live: both clients stop it while paused, so a pause
// is a pause for the people in it too (the server bills by the rule the guest page states).
const userTurnedOff = { audio: false, video: false };
let mediaPaused = false;

function setStatus(text) { $("call-status").textContent = text; }

function serverNow() { return Date.now() + clockOffsetMs; }

async function refresh() {
  try {
    const { session } = await api("GET", `/v1/sessions/${sessionId}`, { token: auth });
    snapshot = session;
    snapshotAt = performance.now();
    minuteShown = Math.floor(session.live_seconds / 60);
    clockOffsetMs = Date.parse(session.as_of) - Date.now();
    if (!session.hold_declined) hideDeclined();
    setMediaPaused(session.state === "paused");
    describe(session);
    if (["ended", "declined", "expired"].includes(session.state)) finish(session);
  } catch (error) {
    setStatus(error instanceof ApiError ? error.message : "Cannot reach Vidivo; retrying…");
  }
}

function describe(session) {
  const other = role === "guest" ? "the host" : session.guest_name;
  const text = {
    pending_payment: "Holding the first window on the card…",
    waiting_for_host: role === "guest" ? "Waiting for the host to join…" : "Connecting to the guest…",
    live: `Live with ${other}.`,
    paused: pausedText(session, other),
    ending: "The call is ending…",
    ended: "The call has ended.",
    declined: "The call did not start.",
    expired: "The host did not join in time, so the call did not start. The hold on your "
      + "card was released: nothing was charged.",
  }[session.state] || session.state;
  setStatus(text);
}

function pausedText(session, other) {
  const grace = session.terms.reconnect_grace_seconds;
  const media = "Your camera and microphone are paused until the call resumes.";
  if (session.away === "host") {
    return `Paused: ${role === "host" ? "your" : "the host's"} connection dropped. `
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
}

function setMediaPaused(paused) {
  mediaPaused = paused;
  applyMediaState();
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
  if (snapshot.next_renewal_at && running) {
    $("renewal-countdown").textContent = formatDuration((Date.parse(snapshot.next_renewal_at) - serverNow()) / 1000);
  } else {
    $("renewal-countdown").textContent = "–";
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

let rtcConfig = null;

function newPeer() {
  if (pc) pc.close();
  pendingCandidates = [];
  pc = new RTCPeerConnection(rtcConfig);
  window.vidivoCall.pc = pc;
  for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
  pc.ontrack = (event) => { $("remote-video").srcObject = event.streams[0]; };
  pc.onicecandidate = (event) => { if (event.candidate) send({ type: "ice", candidate: event.candidate.toJSON() }); };
  pc.onconnectionstatechange = () => { root.dataset.connection = pc.connectionState; };
  return pc;
}

async function makeOffer() {
  const peer = newPeer();
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
  const token = role === "guest" ? ownGuestToken : (await refreshHost()) || currentHostAccessToken();
  socket = new WebSocket(socketUrl(`/v1/sessions/${sessionId}/signal?token=${encodeURIComponent(token)}`));
  const pinger = setInterval(() => send({ type: "ping" }), PING_EVERY_MS);
  socket.onmessage = (message) => onEvent(JSON.parse(message.data)).catch((error) => console.error(error));
  socket.onclose = (close) => {
    clearInterval(pinger);
    if (ended || close.code === 4410 || close.code === 4403) { refresh(); return; }
    setTimeout(connect, 2000);  // dropped: come back; billing pauses meanwhile
  };
}

async function finish(session) {
  if (ended) return;
  ended = true;
  hideDeclined();
  if (socket) socket.close();
  if (pc) pc.close();
  if (localStream) for (const track of localStream.getTracks()) track.stop();
  for (const id of ["mute", "camera", "hang-up"]) $(id).disabled = true;
  describe(session);
  try {
    const { receipt } = await api("GET", `/v1/sessions/${sessionId}/receipt`, { token: auth });
    $("receipt-total").textContent = `$${receipt.total_charged}`;
    $("receipt-minutes").textContent = String(receipt.billed_minutes);
    $("receipt-metering").textContent = receipt.terms.metering;
    $("receipt-windows").replaceChildren(...receipt.windows.map((w) => {
      const row = document.createElement("tr");
      for (const text of [String(w.number), `$${w.held}`, `$${w.captured}`, `$${w.released}`]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    $("receipt").classList.remove("hidden");
  } catch (error) {
    setStatus(`The call has ended. The receipt is not available yet: ${error.message}`);
  }
}

function toggleTrack(kind, button, onLabel, offLabel) {
  const off = button.getAttribute("aria-pressed") !== "true";
  userTurnedOff[kind] = off;
  applyMediaState();
  button.setAttribute("aria-pressed", String(off));
  button.textContent = off ? offLabel : onLabel;
}

$("mute").addEventListener("click", (e) => toggleTrack("audio", e.currentTarget, "Mute", "Unmute"));
$("camera").addEventListener("click", (e) => toggleTrack("video", e.currentTarget, "Camera off", "Camera on"));
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

async function main() {
  window.vidivoCall = { role, pc: null, refresh, snapshot: () => snapshot };
  if (role === "host" && !currentHostAccessToken()) {
    setStatus("Log in to the dashboard to join this call.");
    return;
  }
  if (role === "host") for (const node of document.querySelectorAll(".guest-only")) node.classList.add("hidden");
  await refresh();
  if (role === "guest" && snapshot?.awaiting_authentication) await confirmHold();
  if (ended) return;
  try {
    localStream = await openMedia();
  } catch (error) {
    setStatus(explainMediaError(error));
    return;
  }
  await useSpeaker($("remote-video"));
  $("local-video").srcObject = localStream;
  applyMediaState();
  rtcConfig = await iceConfig();
  setInterval(tick, 250);
  setInterval(refresh, 15000);
  await connect();
}

main();
