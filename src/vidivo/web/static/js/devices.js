// Camera, microphone and speaker: the device check shown before a guest pays and before a host
// accepts, and the one place the call page opens its media. The choice is kept in
// localStorage, so the call uses exactly what the person checked.
const STORAGE_KEY = "vidivo.devices";

/** The saved choice: { audioInput, videoInput, audioOutput, audioOnly }; ids may be "". */
export function savedChoice() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    return {
      audioInput: String(saved.audioInput || ""),
      videoInput: String(saved.videoInput || ""),
      audioOutput: String(saved.audioOutput || ""),
      audioOnly: Boolean(saved.audioOnly),
    };
  } catch {
    return { audioInput: "", videoInput: "", audioOutput: "", audioOnly: false };
  }
}

export function saveChoice(choice) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(choice));
}

function constraints(choice) {
  const audio = choice.audioInput ? { deviceId: { exact: choice.audioInput } } : true;
  if (choice.audioOnly) return { audio, video: false };
  const video = choice.videoInput ? { deviceId: { exact: choice.videoInput } } : true;
  return { audio, video };
}

/** Open the chosen devices; a device that has gone away falls back to the default one. */
export async function openMedia(choice = savedChoice()) {
  try {
    return await navigator.mediaDevices.getUserMedia(constraints(choice));
  } catch (error) {
    if (error.name !== "OverconstrainedError" && error.name !== "NotFoundError") throw error;
    return navigator.mediaDevices.getUserMedia({ audio: true, video: !choice.audioOnly });
  }
}

/** Play a media element's sound on the chosen speaker, where the browser lets us choose. */
export async function useSpeaker(mediaElement, choice = savedChoice()) {
  if (choice.audioOutput && typeof mediaElement.setSinkId === "function") {
    try { await mediaElement.setSinkId(choice.audioOutput); } catch { /* default speaker */ }
  }
}

/** What went wrong opening devices, in words a guest understands. */
export function explainMediaError(error) {
  switch (error && error.name) {
    case "NotAllowedError":
      return "Your browser blocked the camera and microphone. Allow them in the address bar, then try again.";
    case "NotFoundError":
      return "No camera or microphone was found. Plug one in, or choose an audio-only call.";
    case "NotReadableError":
      return "Another app is using your camera or microphone. Close it, then try again.";
    default:
      return "Your camera or microphone could not be opened. Try again, or choose an audio-only call.";
  }
}

// The device check ---------------------------------------------------------------------------

const CAMERA_ADVICE = new Set(["NotFoundError", "NotReadableError", "OverconstrainedError", "AbortError"]);

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function labelledSelect(prefix, name, text) {
  const id = `${prefix}-${name}`;
  const wrap = element("div", { class: `device-field device-${name}` });
  wrap.append(element("label", { for: id }, text), element("select", { id, name }));
  return wrap;
}

let mounted = 0;

// The check's own styles come with it, so any page that mounts it (the guest page, the host's
// accept dialog) shows it the same without linking anything.
function linkStyles() {
  if (document.querySelector('link[data-device-check]')) return;
  const link = element("link", { rel: "stylesheet", href: "/static/devices.css", "data-device-check": "" });
  document.head.append(link);
}

/**
 * Build the device check into `container`: a live preview of the camera, the camera,
 * microphone and (where the browser can choose one) speaker, a microphone level meter and an
 * "Audio only" switch. Every change is saved with saveChoice(), so the call opens exactly what
 * was checked. `onChange(choice)` hears each change. Returns `{ stop(), verify() }`:
 * `stop()` releases the camera and microphone (call it before leaving, or when a dialog
 * closes); `verify()` opens the chosen devices if the check has not, true when they work.
 */
export function mountDeviceCheck(container, { onChange } = {}) {
  mounted += 1;
  linkStyles();
  const prefix = `device-check-${mounted}`;
  const canChooseSpeaker = typeof HTMLMediaElement !== "undefined"
    && typeof HTMLMediaElement.prototype.setSinkId === "function";
  let choice = savedChoice();
  let stream = null;
  let audioContext = null;
  let meterTimer = null;
  let opening = 0;

  const root = element("div", { class: "device-check", "data-state": "idle" });
  const preview = element("div", { class: "device-preview" });
  const video = element("video", { muted: "", playsinline: "", autoplay: "", "aria-label": "Your camera preview" });
  video.muted = true;
  const placeholder = element("p", { class: "device-placeholder" },
    "Your camera preview appears here once you start the check.");
  preview.append(video, placeholder);

  const controls = element("div", { class: "device-controls" });
  const start = element("button", { type: "button", class: "secondary device-start" }, "Test camera and microphone");
  const camera = labelledSelect(prefix, "camera", "Camera");
  const microphone = labelledSelect(prefix, "microphone", "Microphone");
  const speaker = labelledSelect(prefix, "speaker", "Speaker");
  const levelId = `${prefix}-level`;
  const levelWrap = element("div", { class: "device-field device-level-field" });
  const levelLabel = element("span", { id: `${levelId}-label`, class: "device-level-label" }, "Microphone level");
  const level = element("div", {
    id: levelId, class: "device-level", role: "meter", "aria-labelledby": `${levelId}-label`,
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0",
  });
  const bar = element("span", { class: "device-level-bar" });
  level.append(bar);
  levelWrap.append(levelLabel, level);
  const audioOnlyId = `${prefix}-audio-only`;
  const audioOnlyLabel = element("label", { for: audioOnlyId, class: "inline device-audio-only" });
  const audioOnly = element("input", { id: audioOnlyId, type: "checkbox", role: "switch", name: "audio_only" });
  audioOnly.checked = choice.audioOnly;
  audioOnlyLabel.append(audioOnly, document.createTextNode(" Audio only (the call does not use your camera)"));
  const status = element("p", { class: "device-status note", role: "status" });
  const problem = element("div", { class: "device-problem", role: "alert" });
  controls.append(start, camera, microphone, speaker, levelWrap, audioOnlyLabel, status, problem);
  for (const field of [camera, microphone, speaker, levelWrap]) field.hidden = true;
  const layout = element("div", { class: "device-check-layout" });
  layout.append(preview, controls);
  root.append(layout);
  container.append(root);

  const cameraSelect = camera.querySelector("select");
  const microphoneSelect = microphone.querySelector("select");
  const speakerSelect = speaker.querySelector("select");

  function save() {
    saveChoice(choice);
    root.dataset.audioOnly = String(choice.audioOnly);
    if (onChange) onChange({ ...choice });
  }

  function release() {
    if (meterTimer) { clearInterval(meterTimer); meterTimer = null; }
    if (audioContext) { audioContext.close().catch(() => {}); audioContext = null; }
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    level.setAttribute("aria-valuenow", "0");
    bar.style.transform = "scaleX(0)";
  }

  function showPreviewState() {
    const hasVideo = Boolean(stream && stream.getVideoTracks().length);
    preview.classList.toggle("has-video", hasVideo);
    placeholder.textContent = choice.audioOnly
      ? "Audio only: the call will not use your camera."
      : hasVideo ? "" : "Your camera preview appears here once you start the check.";
    camera.hidden = choice.audioOnly || !stream;
  }

  function fill(select, devices, current, fallbackName) {
    select.replaceChildren();
    devices.forEach((device, index) => {
      const option = element("option", { value: device.deviceId }, device.label || `${fallbackName} ${index + 1}`);
      select.append(option);
    });
    if (devices.some((d) => d.deviceId === current)) select.value = current;
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const videoTrack = stream && stream.getVideoTracks()[0];
    const audioTrack = stream && stream.getAudioTracks()[0];
    const cameras = devices.filter((d) => d.kind === "videoinput");
    const microphones = devices.filter((d) => d.kind === "audioinput");
    const speakers = devices.filter((d) => d.kind === "audiooutput");
    fill(cameraSelect, cameras, videoTrack?.getSettings().deviceId || choice.videoInput, "Camera");
    fill(microphoneSelect, microphones, audioTrack?.getSettings().deviceId || choice.audioInput, "Microphone");
    fill(speakerSelect, speakers, choice.audioOutput, "Speaker");
    microphone.hidden = microphones.length === 0;
    speaker.hidden = !canChooseSpeaker || speakers.length === 0;
    levelWrap.hidden = !audioTrack;
    root.dataset.cameras = String(cameras.length);
    root.dataset.microphones = String(microphones.length);
    showPreviewState();
  }

  function meter() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass || !stream || !stream.getAudioTracks().length) return;
    audioContext = new AudioContextClass();
    const analyser = audioContext.createAnalyser();
    analyser.fftSize = 512;
    audioContext.createMediaStreamSource(stream).connect(analyser);
    const samples = new Uint8Array(analyser.fftSize);
    meterTimer = setInterval(() => {
      analyser.getByteTimeDomainData(samples);
      let peak = 0;
      for (const sample of samples) peak = Math.max(peak, Math.abs(sample - 128));
      const percent = Math.min(100, Math.round((peak / 128) * 100 * 1.5));
      level.setAttribute("aria-valuenow", String(percent));
      bar.style.transform = `scaleX(${percent / 100})`;
    }, 100);
  }

  function explainProblem(error) {
    problem.replaceChildren();
    const words = element("p", { class: "error" }, explainMediaError(error));
    problem.append(words);
    if (!choice.audioOnly && CAMERA_ADVICE.has(error && error.name)) {
      const way = element("button", { type: "button", class: "secondary device-choose-audio-only" },
        "No camera? Choose audio only");
      way.addEventListener("click", () => { audioOnly.checked = true; audioOnly.dispatchEvent(new Event("change")); });
      problem.append(way);
    } else if (error && error.name === "NotAllowedError") {
      problem.append(element("p", { class: "note" },
        "Without the microphone there is no call: nothing is held on your card until you start it."));
    }
  }

  async function open() {
    const attempt = ++opening;
    release();
    problem.replaceChildren();
    root.dataset.state = "opening";
    status.textContent = "Opening your camera and microphone…";
    try {
      const opened = await openMedia(choice);
      if (attempt !== opening) { for (const t of opened.getTracks()) t.stop(); return; }
      stream = opened;
    } catch (error) {
      if (attempt !== opening) return;
      root.dataset.state = "failed";
      root.dataset.error = (error && error.name) || "Error";
      status.textContent = "";
      explainProblem(error);
      showPreviewState();
      return;
    }
    root.dataset.state = "ready";
    delete root.dataset.error;
    video.srcObject = stream;
    await useSpeaker(video, choice);
    meter();
    await listDevices();
    start.textContent = "Test again";
    status.textContent = choice.audioOnly
      ? "Your microphone works. Speak: the bar moves with your voice."
      : "Your camera and microphone work. Speak: the bar moves with your voice.";
  }

  start.addEventListener("click", open);
  cameraSelect.addEventListener("change", () => { choice.videoInput = cameraSelect.value; save(); open(); });
  microphoneSelect.addEventListener("change", () => { choice.audioInput = microphoneSelect.value; save(); open(); });
  speakerSelect.addEventListener("change", () => {
    choice.audioOutput = speakerSelect.value;
    save();
    useSpeaker(video, choice);
  });
  audioOnly.addEventListener("change", () => {
    choice.audioOnly = audioOnly.checked;
    save();
    if (stream || root.dataset.state === "failed") open(); else showPreviewState();
  });
  root.dataset.audioOnly = String(choice.audioOnly);
  showPreviewState();

  return {
    /** Open the chosen devices if they are not open yet: true when they work. */
    async verify() {
      if (root.dataset.state !== "ready") await open();
      return root.dataset.state === "ready";
    },
    stop() {
      opening += 1;  // an opening still under way releases what it gets
      release();
      root.dataset.state = "stopped";
    },
  };
}
