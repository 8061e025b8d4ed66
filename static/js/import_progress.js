// The import page's progress bar: polls the job's JSON until the import has ended.
(function () {
  var box = document.getElementById("import-progress");
  var data = document.getElementById("import-progress-data");
  if (!box || !data) return;
  var bar = document.getElementById("import-bar");
  function show(p) {
    bar.style.width = p.progress + "%";
    box.setAttribute("aria-valuenow", p.progress);
    ["rows_done", "created", "updated", "skipped", "failed"].forEach(function (name) {
      var count = document.getElementById("count-" + name);
      if (count) count.textContent = p[name];
    });
    document.getElementById("import-status").textContent = p.status_label;
    var error = document.getElementById("import-error");
    error.textContent = p.error;
    error.classList.toggle("d-none", !p.error);
  }
  var first = JSON.parse(data.textContent);
  if (first.finished || first.status === "draft") return;
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (p) {
        show(p);
        if (p.finished) {
          bar.classList.remove("progress-bar-striped", "progress-bar-animated");
          if (p.status === "failed") bar.classList.add("bg-danger");
          document.getElementById("import-reload").classList.remove("d-none");
        } else {
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
