// The call's peer connection: media both ways, one data channel (media state and chat, sent
// peer to peer through the same TURN relay as the video: nothing of it reaches Vidivo's
// server), and the network quality read from WebRTC's getStats.

export const CHANNEL_LABEL = "vidivo";

/** A peer connection carrying `stream`; an audio-only side still receives the other's video. */
export function createPeer(config, stream, { onTrack, onCandidate, onState, onChannel }) {
  const pc = new RTCPeerConnection(config);
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  if (!stream.getVideoTracks().length) pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => onTrack(event.streams[0] || new MediaStream([event.track]));
  pc.onicecandidate = (event) => { if (event.candidate) onCandidate(event.candidate.toJSON()); };
  pc.onconnectionstatechange = () => onState(pc.connectionState);
  pc.ondatachannel = (event) => { if (event.channel.label === CHANNEL_LABEL) onChannel(event.channel); };
  return pc;
}

/** The side that offers opens the channel (before the offer, so it is negotiated with it). */
export function openChannel(pc) {
  return pc.createDataChannel(CHANNEL_LABEL, { ordered: true });
}

/** The figures that say how the network does, from one getStats report. */
export async function readStats(pc) {
  const report = await pc.getStats();
  const figures = { rttSeconds: null, outgoingBitrate: null, packetsLost: 0, packetsReceived: 0 };
  let pairId = null;
  report.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
  report.forEach((s) => {
    const selected = pairId ? s.id === pairId : s.nominated && s.state === "succeeded";
    if (s.type === "candidate-pair" && selected) {
      figures.rttSeconds = s.currentRoundTripTime ?? null;
      figures.outgoingBitrate = s.availableOutgoingBitrate ?? null;
    }
    if (s.type === "inbound-rtp") {
      figures.packetsLost += s.packetsLost || 0;
      figures.packetsReceived += s.packetsReceived || 0;
    }
  });
  return figures;
}

/**
 * good / fair / poor from the round trip, the packets lost since the last reading and the
 * bitrate the connection can send (a video call needs a few hundred kbit/s).
 */
export function quality(now, before, sendsVideo) {
  if (now.rttSeconds === null) return { word: "checking", lossPercent: 0 };
  const lost = Math.max(0, now.packetsLost - (before ? before.packetsLost : 0));
  const received = Math.max(0, now.packetsReceived - (before ? before.packetsReceived : 0));
  const loss = lost + received > 0 ? lost / (lost + received) : 0;
  const rtt = now.rttSeconds;
  const bitrate = sendsVideo ? now.outgoingBitrate : null;
  let word = "good";
  if (rtt > 0.25 || loss > 0.02 || (bitrate !== null && bitrate < 300000)) word = "fair";
  if (rtt > 0.6 || loss > 0.08 || (bitrate !== null && bitrate < 100000)) word = "poor";
  return { word, lossPercent: loss * 100 };
}

/** Watch the connection every `everyMs`; `show({word, rttMs, lossPercent})` gets each reading. */
export function watchNetwork(getPc, sendsVideo, show, everyMs = 2000) {
  let before = null;
  return setInterval(async () => {
    const pc = getPc();
    if (!pc || pc.connectionState !== "connected") { before = null; return; }
    try {
      const now = await readStats(pc);
      const { word, lossPercent } = quality(now, before, sendsVideo());
      before = now;
      show({ word, rttMs: now.rttSeconds === null ? null : Math.round(now.rttSeconds * 1000), lossPercent });
    } catch (error) {
      console.warn("could not read the call's statistics", error);
    }
  }, everyMs);
}
