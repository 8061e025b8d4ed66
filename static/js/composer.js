// The email composer: a small rich-text editor over the body textarea, and email templates.
// Without JavaScript the textarea works on its own; with it, the editor keeps it in sync.
(function () {
  "use strict";
  const form = document.getElementById("composer");
  if (!form) return;
  const textarea = form.querySelector("textarea[data-editor]");
  const editor = form.querySelector(".editor");
  const toolbar = form.querySelector(".editor-toolbar");
  const templates = JSON.parse(document.getElementById("email-templates").textContent);

  editor.innerHTML = textarea.value;
  textarea.classList.add("d-none");
  editor.classList.remove("d-none");
  toolbar.classList.remove("d-none");

  const sync = () => { textarea.value = editor.innerHTML; };
  editor.addEventListener("input", sync);
  form.addEventListener("submit", sync);

  toolbar.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-command]");
    if (!button) return;
    const command = button.dataset.command;
    let value = null;
    if (command === "createLink") {
      value = window.prompt("Link address (https://...)", "https://");
      if (!value) return;
    }
    editor.focus();
    document.execCommand(command, false, value);
    sync();
  });

  const select = form.querySelector("select[name=template]");
  if (select) {
    select.addEventListener("change", () => {
      const chosen = templates[select.value];
      if (!chosen) return;
      form.querySelector("input[name=subject]").value = chosen.subject;
      editor.innerHTML = chosen.html_body;
      sync();
    });
  }
})();
