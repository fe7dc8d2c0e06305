// The receipt page: the date in the reader's own time zone, and a print button.
const date = document.getElementById("receipt-date");
if (date) {
  const moment = new Date(date.getAttribute("datetime"));
  if (!Number.isNaN(moment.getTime())) {
    date.textContent = new Intl.DateTimeFormat(undefined, { dateStyle: "long", timeStyle: "short" }).format(moment);
    date.title = `${date.getAttribute("datetime")} (UTC)`;
  }
}
document.getElementById("print-receipt")?.addEventListener("click", () => window.print());
