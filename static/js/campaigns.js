// Campaign pages: "select all" checkboxes, confirmation before destructive buttons, and the
// list email progress bar, which polls its JSON endpoint until the send is done.
(function () {
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      box.closest("table").querySelectorAll("tbody input[type=checkbox]").forEach(function (row) {
        row.checked = box.checked;
      });
    });
  });
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
  var bar = document.getElementById("progress");
  if (!bar) return;
  function show(p) {
    ["sent", "skipped", "failed", "unconfirmed", "remaining"].forEach(function (name) {
      var count = document.getElementById("count-" + name);
      if (count) count.textContent = p[name];
      var part = document.getElementById("bar-" + name);
      if (part) part.style.width = (p.total ? (100 * p[name]) / p.total : 0) + "%";
    });
    // Copies a stopped worker left unconfirmed are named only when there are some.
    ["unconfirmed", "unconfirmed-note"].forEach(function (id) {
      var shown = document.getElementById(id);
      if (shown) shown.hidden = !p.unconfirmed;
    });
    var status = document.getElementById("send-status");
    if (status) status.textContent = p.status_label;
    var when = document.getElementById("next-batch");
    if (when) when.textContent = p.status === "scheduled" && p.next_batch_at ? (p.waiting ? "Starts " : "Resumes ") + new Date(p.next_batch_at).toLocaleString() : "";
    return (p.status !== "completed" && p.status !== "cancelled") || p.remaining > 0;
  }
  // The member table follows the bar: when the counts move, the table (this page with its
  // filter and page) is fetched again and swapped in, parsed inert first.
  var table = document.getElementById("recipients");
  var seen = bar.dataset.counts; // what the page was rendered with
  function refreshTable(p) {
    var counts = [p.sent, p.skipped, p.failed, p.remaining, p.unconfirmed].join(",");
    if (!table || counts === seen) return;
    seen = counts;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("recipients");
        if (fresh) table.replaceChildren.apply(table, Array.from(fresh.childNodes).map(function (node) { return document.adoptNode(node); }));
      })
      .catch(function () {});
  }
  function poll() {
    fetch(bar.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (p) { refreshTable(p); if (show(p)) window.setTimeout(poll, 2000); })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  if (bar.dataset.done !== "true") window.setTimeout(poll, 1000);
})();
