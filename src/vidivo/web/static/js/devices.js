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
