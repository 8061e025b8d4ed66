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

  // The server already cleans what it gives this page (crm.views.compose.editable_html); this
  // is the second line: HTML is parsed in an inert document (nothing runs or loads there), and
  // only what is left after removing active content is moved into the live editor.
  const ACTIVE = "script, iframe, frame, frameset, object, embed, applet, base, link, meta, style, "
    + "svg, math, template, form, input, button, textarea, select, noscript, portal";
  const URL_ATTRIBUTES = ["href", "src", "action", "formaction", "xlink:href", "background", "poster", "srcset"];
  const SAFE_URL = /^(?:https?:|mailto:|tel:|cid:|data:image\/(?:png|gif|jpe?g|webp);|[^:]*$)/i;

  function cleanFragment(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.body.querySelectorAll(ACTIVE).forEach((element) => element.remove());
    doc.body.querySelectorAll("*").forEach((element) => {
      for (const attribute of Array.from(element.attributes)) {
        const name = attribute.name.toLowerCase();
        // Browsers ignore control characters and spaces inside a scheme ("java\tscript:").
        const value = attribute.value.replace(/[\u0000-\u0020]/g, "");
        if (name.startsWith("on") || (URL_ATTRIBUTES.includes(name) && !SAFE_URL.test(value))) {
          element.removeAttribute(attribute.name);
        }
      }
    });
    const fragment = document.createDocumentFragment();
    for (const node of Array.from(doc.body.childNodes)) {
      fragment.appendChild(document.adoptNode(node));
    }
    return fragment;
  }

  function show(html) {
    editor.replaceChildren(cleanFragment(html));
  }

  show(textarea.value);
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
      if (!value || !SAFE_URL.test(value.replace(/[\u0000-\u0020]/g, ""))) return;
    }
    editor.focus();
    document.execCommand(command, false, value);
    sync();
  });

  // A hint as the user types: other tools' merge fields (Mailchimp's *|FNAME|*, ...) would be
  // sent unfilled. The server refuses them on Send (mailkit.merge.field_problems, the authority,
  // whose patterns these repeat); this only says so earlier, next to the body.
  const FIELDS = ["first_name", "last_name", "name", "company", "title", "email", "sender_name",
    "sender_email"];
  const ALIASES = {
    fname: "first_name", firstname: "first_name", lname: "last_name", lastname: "last_name",
    surname: "last_name", name: "name", fullname: "name", company: "company",
    companyname: "company", account: "company", accountname: "company", title: "title",
    jobtitle: "title", email: "email", emailaddress: "email",
  };
  const FOREIGN = [
    [/\*\|[A-Za-z0-9_:-]{1,40}\|\*/g, false],
    [/%%=?[A-Za-z_@][A-Za-z0-9_.@() -]{0,40}=?%%/g, false],
    [/\{![A-Za-z_$][A-Za-z0-9_.$ ]{0,60}\}/g, false],
    [/[$#]\{[A-Za-z_][A-Za-z0-9_.]{0,40}\}/g, false],
    [/\{\$[A-Za-z_][A-Za-z0-9_.]{0,40}\}/g, false],
    [/\{\{(?!\s*[A-Za-z_]+\s*\}\})[^{}\n]{1,60}\}\}/g, false],
    [/(?<![\w\]])\[\[?([A-Za-z][A-Za-z _.-]{0,30})\]\]?/g, true],
    [/(?<![{$#])\{([A-Za-z][A-Za-z _.-]{0,30})\}(?!\})/g, true],
  ];

  function alias(written) {
    const name = written.includes(".") ? written.slice(written.lastIndexOf(".") + 1) : written;
    return ALIASES[name.replace(/[\s_.-]+/g, "").toLowerCase()] || null;
  }

  function foreignFields(text) {
    const found = [];
    for (const [pattern, bracketed] of FOREIGN) {
      for (const match of text.matchAll(pattern)) {
        if (bracketed && !alias(match[1])) continue;
        found.push([match.index, match[0]]);
      }
    }
    found.sort((a, b) => a[0] - b[0]);
    return [...new Set(found.map((item) => item[1]))];
  }

  const hint = document.createElement("div");
  hint.className = "form-text text-danger d-none";
  hint.setAttribute("role", "status");
  hint.setAttribute("aria-live", "polite");
  hint.dataset.mergeHint = "";
  editor.after(hint);
  const subject = form.querySelector("input[name=subject]");

  function checkFields() {
    const found = foreignFields(`${subject ? subject.value : ""}\n${textarea.value}`);
    hint.classList.toggle("d-none", found.length === 0);
    if (!found.length) return;
    const named = found.map((snippet) => {
      const field = alias(snippet.replace(/^[*|%={}[\]!$# ]+|[*|%={}[\]!$# ]+$/g, ""));
      return field ? `${snippet} (use {{${field}}})` : snippet;
    });
    hint.textContent = "Merge fields from another tool would be sent as written, unfilled: "
      + named.join(", ") + ". Use one of: " + FIELDS.map((f) => `{{${f}}}`).join(", ") + ".";
  }

  editor.addEventListener("input", checkFields);
  if (subject) subject.addEventListener("input", checkFields);
  checkFields();

  const select = form.querySelector("select[name=template]");
  if (select) {
    select.addEventListener("change", () => {
      const chosen = templates[select.value];
      if (!chosen) return;
      form.querySelector("input[name=subject]").value = chosen.subject;
      show(chosen.html_body);
      sync();
      checkFields();
    });
  }
})();
