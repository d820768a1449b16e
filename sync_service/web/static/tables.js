// Plansheet's tables, enhanced where the page marks them (the page works without this script):
//   <table class="sortable">  each header sorts its column (a cell's data-sort, else its text; numbers as numbers);
//   <table class="paged" data-page-size="50">  a search box and pages over the body's rows.
// The totals row lives in <tfoot>, so sorting and paging never move it.
(function () {
  "use strict";

  function key(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    var n = Number(raw);
    return raw !== "" && !isNaN(n) ? n : raw.toLowerCase();
  }

  function sortable(table) {
    var heads = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
    Array.prototype.forEach.call(heads, function (th, column) {
      if (th.hasAttribute("data-nosort") || th.colSpan > 1) return;
      var button = document.createElement("button");
      button.type = "button";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (other) { if (other.hasAttribute("aria-sort")) other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[column] || a), y = key(b.cells[column] || b);
          if (typeof x === typeof y) return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
          return (typeof x === "number" ? -1 : 1) * (ascending ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
        if (table.plansheetPage) table.plansheetPage(0);
      });
    });
  }

  function paged(table) {
    var size = Number(table.getAttribute("data-page-size")) || 50;
    var body = table.tBodies[0];
    var tools = document.createElement("div");
    tools.className = "table-tools";
    var label = document.createElement("label");
    label.textContent = "Search ";
    var search = document.createElement("input");
    search.type = "search";
    search.setAttribute("aria-controls", table.id || "");
    label.appendChild(search);
    var status = document.createElement("span");
    status.setAttribute("role", "status");
    var previous = document.createElement("button");
    previous.type = "button"; previous.className = "secondary"; previous.textContent = "Previous";
    var next = document.createElement("button");
    next.type = "button"; next.className = "secondary"; next.textContent = "Next";
    tools.appendChild(label); tools.appendChild(previous); tools.appendChild(status); tools.appendChild(next);
    var holder = table.parentNode.classList.contains("table-scroll") ? table.parentNode : table;
    holder.parentNode.insertBefore(tools, holder);
    var page = 0;
    function show(p) {
      var words = search.value.trim().toLowerCase();
      var rows = Array.prototype.filter.call(body.rows, function (row) {
        var hit = !words || row.textContent.toLowerCase().indexOf(words) !== -1;
        row.hidden = true;
        return hit;
      });
      var pages = Math.max(1, Math.ceil(rows.length / size));
      page = Math.min(Math.max(0, p), pages - 1);
      rows.slice(page * size, (page + 1) * size).forEach(function (row) { row.hidden = false; });
      status.textContent = rows.length + " rows · page " + (page + 1) + " of " + pages;
      previous.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    table.plansheetPage = show;
    search.addEventListener("input", function () { show(0); });
    previous.addEventListener("click", function () { show(page - 1); });
    next.addEventListener("click", function () { show(page + 1); });
    show(0);
  }

  // A table wider than the screen scrolls inside its box: the box takes the keyboard's focus and is named
  // (from the table's caption, else the heading before it), so it can be scrolled without a mouse.
  function scrollable(box) {
    if (box.hasAttribute("tabindex")) return;
    box.setAttribute("tabindex", "0");
    box.setAttribute("role", "region");
    if (box.hasAttribute("aria-label") || box.hasAttribute("aria-labelledby")) return;
    var table = box.querySelector("table");
    var caption = table && table.caption ? table.caption.textContent.trim() : "";
    var heading = box.previousElementSibling;
    while (!caption && heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
    box.setAttribute("aria-label", caption || (heading ? heading.textContent.trim() : "Table"));
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".table-scroll"), scrollable);
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
    Array.prototype.forEach.call(document.querySelectorAll("table.paged"), paged);
  });
})();
