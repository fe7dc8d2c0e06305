// Tables that stack on a phone (`table.stack`) keep their column names: every cell gets its
// column's header as `data-label`, which the stylesheet shows before the cell's content.
// Rows are added by many modules at any time, so one observer labels them all as they come.

function label(table) {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, index) => {
      if (!cell.hasAttribute("data-label")) cell.setAttribute("data-label", names[index] || "");
    });
  }
}

export function labelTables(root = document) {
  const tables = () => root.querySelectorAll("table.stack");
  tables().forEach(label);
  new MutationObserver(() => tables().forEach(label)).observe(root.body || root, { childList: true, subtree: true });
}
