// Earnings by day, week or month (GET /v1/earnings/periods): the totals, a bar chart drawn
// as inline SVG (with a text summary and a table for those who do not see it), in the host's
// own time zone; under it the latest payouts to the host's bank (GET /v1/host/payouts/history).
import { api, el, explain, formatCents, toCents } from "./api.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const PERIOD_WORDS = { day: "day", week: "week", month: "month" };
let period = "day";
let flash = () => {};
let shown = null; // the last answer, drawn again when the chart's width changes

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

// Labels come as local dates ("2026-03-15", the Monday of a week, "2026-03"): shown as written
// in the host's language, read as UTC so no time zone moves them a day.
function labelText(label, kind, style = "short") {
  const [year, month, day = "1"] = label.split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  if (kind === "month") return date.toLocaleDateString(undefined, { month: style, year: "numeric", timeZone: "UTC" });
  const text = date.toLocaleDateString(undefined, { day: "numeric", month: style, timeZone: "UTC" });
  return kind === "week" ? `Week of ${text}` : text;
}

function totalsList(totals) {
  const item = (name, value, extra = {}) => el("div", {}, el("dt", {}, name), el("dd", extra, value));
  $("earnings-totals").replaceChildren(
    item("Calls paid", String(totals.sessions)),
    item("Gross", `$${totals.gross}`),
    item("Platform fees", `$${totals.platform_fees}`),
    item("Refunds", `$${totals.refunds}`),
    item("Net to you", `$${totals.net}`, { class: "earnings-net" }),
  );
}

// One bar per period, its height the gross billed; the net shown as the inner, darker part.
function chart(periods) {
  const width = Math.max(280, Math.round($("earnings-chart").clientWidth || 640)); // 1 unit = 1 px
  const height = 220;
  const top = 20;
  const bottom = 28;
  const plot = height - top - bottom;
  const most = Math.max(...periods.map((p) => toCents(p.gross)), 0);
  const slot = width / Math.max(periods.length, 1);
  const barWidth = Math.max(2, slot * 0.7);
  // At most 7 axis labels, fewer on a narrow chart: one label needs about 64 px.
  const every = Math.ceil(periods.length / Math.max(2, Math.min(7, Math.floor(width / 64))));
  const figure = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "earnings-summary",
    class: "earnings-chart", width, height,
  });
  figure.append(svg("line", { x1: 0, x2: width, y1: top + plot, y2: top + plot, class: "chart-axis" }));
  // A label centred on a bar near either edge would be cut off: it is aligned to the bar there.
  const place = (x) => (x < 36 ? { x: Math.max(0, x - barWidth / 2), "text-anchor": "start" }
    : x > width - 36 ? { x: Math.min(width, x + barWidth / 2), "text-anchor": "end" }
    : { x, "text-anchor": "middle" });
  periods.forEach((p, index) => {
    const gross = toCents(p.gross);
    const net = Math.max(0, toCents(p.net));
    const x = index * slot + (slot - barWidth) / 2;
    const barHeight = most ? (gross / most) * plot : 0;
    const netHeight = most ? (Math.min(net, gross) / most) * plot : 0;
    const bar = svg("g", { class: "chart-bar", "data-label": p.label, "data-gross": p.gross },
      svg("title", {}, `${labelText(p.label, period, "long")}: $${p.gross} billed, $${p.net} net`),
      svg("rect", { x, y: top + plot - barHeight, width: barWidth, height: barHeight, class: "chart-gross" }),
      svg("rect", { x, y: top + plot - netHeight, width: barWidth, height: netHeight, class: "chart-net" }));
    figure.append(bar);
    if (gross) {
      figure.append(svg("text", { ...place(x + barWidth / 2), y: top + plot - barHeight - 4, class: "chart-value" }, `$${p.gross}`));
    }
    if (index % every === 0) {
      figure.append(svg("text", { ...place(x + barWidth / 2), y: height - 8, class: "chart-label" }, labelText(p.label, period)));
    }
  });
  return figure;
}

function summary(body) {
  const periods = body.periods;
  const first = labelText(periods[0].label, period);
  const last = labelText(periods[periods.length - 1].label, period);
  const best = periods.reduce((a, b) => (toCents(b.gross) > toCents(a.gross) ? b : a), periods[0]);
  const word = PERIOD_WORDS[period];
  let text = `Billed by ${word}, ${first} to ${last}: $${body.totals.gross} in all, $${body.totals.net} net to you.`;
  if (toCents(best.gross)) text += ` Best ${word}: ${labelText(best.label, period)}, $${best.gross}.`;
  else text += " Nothing was billed in this time.";
  return text;
}

function tableRows(periods) {
  return periods.map((p) => el("tr", {},
    el("th", { scope: "row" }, labelText(p.label, period)),
    el("td", { "data-label": "Calls" }, String(p.sessions)), el("td", { "data-label": "Gross" }, `$${p.gross}`),
    el("td", { "data-label": "Platform fees" }, `$${p.platform_fees}`),
    el("td", { "data-label": "Refunds" }, `$${p.refunds}`), el("td", { "data-label": "Net" }, `$${p.net}`)));
}

// A payout's state in words, and how its arrival date reads in that state.
const PAYOUT_WORDS = {
  paid: ["Arrived", ""],
  in_transit: ["On its way to your bank", " (expected)"],
  pending: ["Being prepared", " (expected)"],
  failed: ["Failed: your bank refused it, and the money went back to your balance", " (was expected)"],
  canceled: ["Canceled: the money stayed in your balance", " (was expected)"],
};

function payoutAmount(payout) {
  return payout.currency === "usd" ? `$${payout.amount}` : `${payout.amount} ${payout.currency.toUpperCase()}`;
}

function payoutRow(payout) {
  const [status, arrivalNote] = PAYOUT_WORDS[payout.status] || [payout.status, ""];
  const [year, month, day] = payout.arrival_date.split("-").map(Number);
  const arrival = new Date(Date.UTC(year, month - 1, day))
    .toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  return el("tr", { "data-payout-id": payout.id, "data-status": payout.status },
    el("td", {}, el("time", { datetime: payout.arrival_date }, arrival), arrivalNote),
    el("td", { class: "payout-amount" }, payoutAmount(payout)),
    el("td", { class: "payout-status" }, status));
}

export async function loadPayoutHistory() {
  const body = await api("GET", "/v1/host/payouts/history?limit=10", { token: "host" });
  $("payout-rows").replaceChildren(...body.payouts.map(payoutRow));
  $("payouts-table").hidden = body.payouts.length === 0;
  $("payouts-empty").hidden = body.payouts.length > 0;
}

export async function loadEarnings() {
  loadPayoutHistory().catch((error) => flash(explain(error), "warning"));
  const query = new URLSearchParams({ period, tz: TIME_ZONE });
  const body = await api("GET", `/v1/earnings/periods?${query}`, { token: "host" });
  const first = labelText(body.periods[0].label, period);
  const last = labelText(body.periods[body.periods.length - 1].label, period);
  $("earnings").textContent = `${first} – ${last}: ${formatCents(toCents(body.totals.net))} to you from ${body.totals.sessions} paid ${body.totals.sessions === 1 ? "call" : "calls"}.`;
  totalsList(body.totals);
  shown = body;
  $("earnings-chart").replaceChildren(chart(body.periods));
  $("earnings-summary").textContent = summary(body);
  $("earnings-rows").replaceChildren(...tableRows(body.periods));
}

export function initEarnings(options) {
  flash = options.flash || flash;
  let width = 0;
  new ResizeObserver(([entry]) => {
    const now = Math.round(entry.contentRect.width);
    if (shown && now && now !== width) $("earnings-chart").replaceChildren(chart(shown.periods));
    width = now;
  }).observe($("earnings-chart"));
  for (const button of document.querySelectorAll("#earnings-section [data-period]")) {
    button.addEventListener("click", () => {
      period = button.dataset.period;
      for (const other of document.querySelectorAll("#earnings-section [data-period]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      loadEarnings().catch((error) => flash(explain(error), "warning"));
    });
  }
}
