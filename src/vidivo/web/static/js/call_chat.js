// The call's text chat: messages go over the peer-to-peer data channel (call_media.js) and
// live only in the two pages. The log is an ARIA live region; the input is labelled.
const $ = (id) => document.getElementById(id);
const MAX_LENGTH = 1000;

export function createChat({ root, send, otherName }) {
  const log = $("chat-log");
  const form = $("chat-form");
  const input = $("chat-input");
  const toggle = $("chat-toggle");
  const unread = $("chat-unread");
  let unreadCount = 0;

  const panelShown = () => getComputedStyle($("chat")).display !== "none";

  function setOpen(open) {
    root.dataset.chatOpen = String(open);
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      unreadCount = 0;
      unread.classList.add("hidden");
      input.focus();
    }
  }

  function add(sender, text, at, own) {
    const time = new Date(at);
    const item = document.createElement("li");
    if (own) item.className = "own";
    const meta = document.createElement("p");
    meta.className = "call-chat-meta";
    const who = document.createElement("strong");
    who.textContent = sender;
    const when = document.createElement("time");
    when.dateTime = time.toISOString();
    when.textContent = time.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    meta.append(who, when);
    const body = document.createElement("p");
    body.textContent = text;
    item.append(meta, body);
    $("chat-list").append(item);
    log.scrollTop = log.scrollHeight;
    $("chat-empty").classList.add("hidden");
    if (!own && !panelShown()) {
      unreadCount += 1;
      unread.textContent = `${unreadCount} new`;
      unread.classList.remove("hidden");
    }
  }

  toggle.addEventListener("click", () => setOpen(root.dataset.chatOpen !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.dataset.chatOpen === "true") { setOpen(false); toggle.focus(); }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim().slice(0, MAX_LENGTH);
    if (!text) return;
    const at = new Date().toISOString();
    if (!send({ type: "chat", text, at })) return;
    add("You", text, at, true);
    input.value = "";
  });

  return {
    /** A message from the other side (shown with their name and the time it was sent). */
    receive(message) {
      if (typeof message.text !== "string" || !message.text) return;
      const at = Number.isNaN(Date.parse(message.at)) ? new Date().toISOString() : message.at;
      add(otherName(), message.text.slice(0, MAX_LENGTH), at, false);
    },
    /** The channel is open (or closed): the input follows it. */
    setReady(ready) {
      input.disabled = !ready;
      $("chat-send").disabled = !ready;
    },
  };
}
