// A data request's page: the progress bar polls its JSON endpoint while the job runs, and the
// page reloads once the job has finished, to show what it did (and the download button).
(function () {
  var box = document.getElementById("request-progress");
  if (!box || box.dataset.finished === "true") return;
  var bar = document.getElementById("request-bar");
  var status = document.getElementById("request-status");
  var step = document.getElementById("request-step");
  function show(p) {
    bar.style.width = p.progress + "%";
    bar.textContent = p.progress + "%";
    box.setAttribute("aria-valuenow", p.progress);
    status.textContent = p.status_label;
    step.textContent = p.step;
  }
  function poll() {
    fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (p) {
        show(p);
        if (p.finished) window.location.reload();
        else window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
