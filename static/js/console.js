// Behaviour for the Gatehouse console. Served as a file so the pages need no inline script.
"use strict";

// A form with data-confirm="Question?" submits only once the user has said yes.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// A form with data-download fetches the file it answers, saves it, then loads the page again:
// the page then shows what the download changed (a new key) and any message. Without
// JavaScript the form still downloads, and the page is simply not refreshed.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.hasAttribute("data-download")) {
    return;
  }
  event.preventDefault();
  const button = form.querySelector("[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      redirect: "manual",  // a refusal redirects with a message the reload must still show
    });
    if (response.ok) {
      const disposition = response.headers.get("Content-Disposition") || "";
      const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "download";
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
    }
  } finally {
    window.location.assign(window.location.pathname + window.location.search);
  }
});
