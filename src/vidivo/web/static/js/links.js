// The dashboard's call links: the form (with its "More options"), the list, and what each
// link row offers (copy, share, QR code, deactivate).
import { api, el, explain, onSubmit } from "./api.js";

const $ = (id) => document.getElementById(id);
let linkCursor = null;
let say = () => {};
let created = () => {};

// How long "Copied" shows before the button reads "Copy" (or "Share") again.
const COPIED_FOR_MS = 2000;
const OPTION_FIELDS = ["max_uses", "expires_at", "scheduled_start", "scheduled_end"];

// "2026-11-26T09:30" typed in the host's own time → the API's UTC timestamp.
function isoFromLocal(value) {
  return value ? new Date(value).toISOString() : null;
}

// The API's words for a date that does not fit, as the host would say them.
const DATE_WORDS = {
  "must be in the future": "Choose a time in the future.",
  "must be after scheduled_start": "Choose a closing time after the opening time.",
  "must be before expires_at": "Choose an opening time before the link expires.",
};

function inPlainWords(error) {
  for (const detail of error.details || []) {
    if (DATE_WORDS[detail.message]) detail.message = DATE_WORDS[detail.message];
  }
  if (error.code === "validation_error" && (error.details || []).length) error.message = "Check the fields marked above.";
  return error;
}

function when(timestamp) {
  return new Date(timestamp).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function linkBody(form) {
  const body = {
    rate_per_minute: form.elements.rate_per_minute.value.trim(),
    window_size_minutes: Number(form.elements.window_size_minutes.value),
  };
  const label = form.elements.label.value.trim();
  if (label) body.label = label;
  if (form.elements.max_uses.value) body.max_uses = Number(form.elements.max_uses.value);
  for (const name of ["expires_at", "scheduled_start", "scheduled_end"]) {
    const value = isoFromLocal(form.elements[name].value);
    if (value) body[name] = value;
  }
  return body;
}

function openOptionsIfNeeded(names) {
  if (names.some((name) => OPTION_FIELDS.includes(name))) $("link-options").open = true;
}

function temporaryText(button, text, back) {
  button.textContent = text;
  clearTimeout(button.resetTimer);
  button.resetTimer = setTimeout(() => { button.textContent = back; }, COPIED_FOR_MS);
}

async function copyText(button, url, back) {
  try { await navigator.clipboard.writeText(url); temporaryText(button, "Copied", back); } catch { temporaryText(button, "Select and copy", back); }
}

function copyButton(link) {
  const copy = el("button", { type: "button", class: "secondary small", "aria-label": `Copy link ${link.short_code}` }, "Copy");
  copy.addEventListener("click", () => copyText(copy, link.url, "Copy"));
  return copy;
}

// The phone's own share sheet where there is one; a copy everywhere else.
function shareButton(link) {
  const share = el("button", { type: "button", class: "secondary small", "aria-label": `Share link ${link.short_code}` }, "Share");
  share.addEventListener("click", async () => {
    if (navigator.share) {
      try {
        await navigator.share({ title: "A video call with me on Vidivo", text: "Book a paid video call with me:", url: link.url });
        temporaryText(share, "Shared", "Share");
      } catch { /* the host closed the share sheet */ }
      return;
    }
    await copyText(share, link.url, "Share");
  });
  return share;
}

function qrButton(link, row) {
  const qr = el("button", { type: "button", class: "ghost small", "aria-expanded": "false", "aria-label": `QR code of link ${link.short_code}` }, "QR code");
  qr.addEventListener("click", () => {
    const open = row.querySelector(".qr");
    if (open) { open.remove(); qr.setAttribute("aria-expanded", "false"); return; }
    const src = `/app/links/${link.short_code}/qr.svg`;
    row.querySelector("td").append(el("div", { class: "qr" },
      el("img", { src, alt: `QR code that opens ${link.url}`, width: "160", height: "160" }),
      el("a", { href: src, download: `vidivo-${link.short_code}.svg`, class: "muted" }, "Download the QR code")));
    qr.setAttribute("aria-expanded", "true");
  });
  return qr;
}

// A deactivated link stays listed, marked, with nothing left to do to it.
function linkActions(link, row) {
  if (!link.is_active) return el("span", { class: "badge" }, "Inactive");
  const remove = el("button", { type: "button", class: "ghost danger small", "aria-label": `Deactivate link ${link.short_code}` }, "Deactivate");
  remove.addEventListener("click", async () => {
    if (!confirm(`Deactivate ${link.url}? Guests can no longer open it.`)) return;
    try {
      await api("DELETE", `/v1/links/${link.id}`, { token: "host" });
      row.replaceWith(linkRow({ ...link, is_active: false }));
      say("Link deactivated.");
    } catch (error) { say(explain(error), "warning"); }
  });
  return el("div", { class: "link-actions" }, copyButton(link), shareButton(link), qrButton(link, row), remove);
}

// What the link's options mean, as badges under its address.
function linkMeta(link) {
  const badges = [];
  if (link.expires_at) badges.push(el("span", { class: "badge warn", "data-meta": "expires" }, `Expires ${when(link.expires_at)}`));
  if (link.scheduled_start || link.scheduled_end) {
    const from = link.scheduled_start ? when(link.scheduled_start) : "now";
    const to = link.scheduled_end ? when(link.scheduled_end) : "no end";
    badges.push(el("span", { class: "badge accent", "data-meta": "scheduled" }, `Open ${from} – ${to}`));
  }
  return badges.length ? el("div", { class: "link-meta" }, ...badges) : "";
}

function usesText(link) {
  return link.max_uses ? `${link.use_count} of ${link.max_uses}` : `${link.use_count} (no limit)`;
}

export function linkRow(link) {
  const row = el("tr", { "data-link-id": link.id, "data-active": String(link.is_active) },
    el("td", { "data-label": "Link" }, el("a", { href: link.url, class: "link-address" }, link.url.replace(/^https?:\/\//, "")),
      link.label ? el("div", { class: "muted" }, link.label) : "", linkMeta(link)),
    el("td", { "data-label": "Rate" }, `$${link.rate_per_minute} / min`,
      el("div", { class: "muted" }, `${link.window_size_minutes}-min windows`)),
    el("td", { "data-label": "Uses", "data-uses": "" }, usesText(link)));
  row.append(el("td", { "data-label": "" }, linkActions(link, row)));
  return row;
}

// The list leaves the schedule out; the owner's view of each active link has it.
async function withSchedule(link) {
  if (!link.is_active) return link;
  try {
    const { link: full } = await api("GET", `/v1/links/${link.short_code}`, { token: "host" });
    return { ...link, scheduled_start: full.scheduled_start, scheduled_end: full.scheduled_end };
  } catch { return link; }
}

function showEmpty() {
  $("no-links").classList.toggle("hidden", $("link-rows").children.length > 0);
}

export async function loadLinks(more = false) {
  const query = new URLSearchParams({ limit: "20" });
  // Active links only unless the host asks for the deactivated ones as well.
  if (!$("show-inactive-links").checked) query.set("active", "true");
  if (more && linkCursor) query.set("cursor", linkCursor);
  const page = await api("GET", `/v1/links?${query}`, { token: "host" });
  const rows = (await Promise.all(page.links.map(withSchedule))).map(linkRow);
  if (more) $("link-rows").append(...rows); else $("link-rows").replaceChildren(...rows);
  linkCursor = page.pagination.cursor;
  $("more-links").classList.toggle("hidden", !page.pagination.has_more);
  showEmpty();
}

/** Lock the form with a reason (set-up not finished), or unlock it with null. */
export function lockLinkForm(reason) {
  $("link-fields").disabled = Boolean(reason);
  $("link-locked").textContent = reason || "";
  $("link-locked").classList.toggle("hidden", !reason);
}

export function initLinks({ flash, onCreated }) {
  say = flash;
  created = onCreated || created;
  const form = $("link-form");
  // Before the checks run: a problem in a closed "More options" must be seen.
  form.addEventListener("submit", () => {
    const bad = [...form.elements].filter((input) => input.name && input.validity && !input.validity.valid);
    openOptionsIfNeeded(bad.map((input) => input.name));
  });
  onSubmit("link-form", "link-error", async () => {
    let link;
    try {
      ({ link } = await api("POST", "/v1/links", {
        token: "host", body: linkBody(form), headers: { "Idempotency-Key": crypto.randomUUID() },
      }));
    } catch (error) {
      openOptionsIfNeeded((error.details || []).map((detail) => String(detail.field || "")));
      throw inPlainWords(error);
    }
    $("link-rows").prepend(linkRow(link));
    showEmpty();
    // A fresh form for the next link: the last label and options do not carry over.
    form.reset();
    $("link-options").open = false;
    say(`Link created: ${link.url}`);
    created(link);
  });
  $("more-links").addEventListener("click", () => loadLinks(true).catch((error) => say(explain(error), "warning")));
  $("show-inactive-links").addEventListener("change", () => loadLinks().catch((error) => say(explain(error), "warning")));
}
