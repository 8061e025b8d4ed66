// The Activity Timeline: "Load more" appends the next page; an email's details load when opened.
(function () {
  "use strict";
  const timeline = document.getElementById("timeline");
  if (!timeline || timeline.dataset.ready) return;
  timeline.dataset.ready = "1";

  timeline.addEventListener("click", async (event) => {
    const link = event.target.closest("a[data-load-more]");
    if (!link) return;
    event.preventDefault();
    link.classList.add("disabled");
    const response = await fetch(link.href, { headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) { link.classList.remove("disabled"); return; }
    const holder = document.createElement("div");
    holder.innerHTML = await response.text();
    link.closest(".timeline-more").replaceWith(...holder.childNodes);
  });

  timeline.addEventListener("toggle", async (event) => {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.open || details.dataset.loaded) return;
    details.dataset.loaded = "1";
    const response = await fetch(details.dataset.activityUrl);
    if (response.ok) details.querySelector(".activity-body").innerHTML = await response.text();
  }, true);
})();
