// The Outbox message page: count down to the end of Setup's scanner window, so the person
// trying Openrate knows when a click counts as theirs rather than a link scanner's.
(function () {
  "use strict";
  const note = document.getElementById("outbox-wait");
  if (!note) return;
  const clickableAt = Date.parse(note.dataset.clickableAt);
  if (Number.isNaN(clickableAt)) return;
  function tick() {
    const left = Math.ceil((clickableAt - Date.now()) / 1000);
    if (left > 0) {
      note.textContent = "Wait " + left + " more second" + (left === 1 ? "" : "s") + " before clicking.";
      window.setTimeout(tick, 250);
    } else {
      note.textContent = "You can click now.";
    }
  }
  tick();
})();
