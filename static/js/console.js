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

// A form with data-export="<page URL>" posts for a file download (the root key). A file comes
// back: save it and load that page, which then shows the new state and message. Anything else is
// the page with the form's errors: post the form the plain way to show it (a refused export
// changes nothing, so posting twice is harmless). Without JavaScript the form still works.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (event.defaultPrevented || !form.hasAttribute("data-export")) {
    return;
  }
  event.preventDefault();
  const button = form.querySelector("[type=submit]");
  button.disabled = true;
  let response = null;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
    });
  } catch (error) {
    response = null;
  }
  const disposition = (response && response.headers.get("Content-Disposition")) || "";
  if (!response || !response.ok || !disposition.startsWith("attachment")) {
    form.removeAttribute("data-export");
    button.disabled = false;
    form.submit();
    return;
  }
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "download";
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  window.location.assign(form.dataset.export || window.location.pathname);
});

// A button with data-copy="#id" copies the text of that element.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) {
    return;
  }
  const source = document.querySelector(button.dataset.copy);
  await navigator.clipboard.writeText(source.textContent);
  const label = button.textContent;
  button.textContent = "Copied";
  window.setTimeout(() => { button.textContent = label; }, 1500);
});

// Jobs that follow themselves. Inside [data-live-jobs], each [data-job-url] element is a job
// (data-job-status, data-job-kind) with [data-job-field] parts. Every 2 s the unfinished ones
// are read from the API and shown; once none is left running, the page loads once more
// (data-reload-url) so it shows what the jobs changed, or, when a deletion has finished,
// goes to data-gone-url.
(() => {
  const container = document.querySelector("[data-live-jobs]");
  if (!container) {
    return;
  }
  const FINISHED = ["succeeded", "failed", "gone"];
  const POLL_MS = 2000;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const jobs = [...container.querySelectorAll("[data-job-url]")];
  const unfinished = () => jobs.filter((job) => !FINISHED.includes(job.dataset.jobStatus));
  if (unfinished().length === 0) {
    return;
  }

  // As the server writes times (Django's "j M H:i:s" in UTC, the console's time zone).
  const when = (iso) => {
    if (!iso) {
      return "—";
    }
    const d = new Date(iso);
    const two = (n) => String(n).padStart(2, "0");
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ` +
      `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  };
  const field = (job, name) => job.querySelector(`[data-job-field="${name}"]`);
  const set = (job, name, apply) => {
    const element = field(job, name);
    if (element) {
      apply(element);
    }
  };

  const show = (job, data) => {
    job.dataset.jobStatus = data.status;
    set(job, "status", (badge) => {
      badge.className = `badge badge-${data.status}`;
      badge.textContent = data.status.charAt(0).toUpperCase() + data.status.slice(1);
    });
    set(job, "attempts", (cell) => { cell.textContent = data.attempts; });
    set(job, "started_at", (cell) => { cell.textContent = when(data.started_at); });
    set(job, "finished_at", (cell) => { cell.textContent = when(data.finished_at); });
    set(job, "error", (text) => {
      text.textContent = data.error;
      text.closest("tr").hidden = !data.error;
    });
  };

  const read = async (job) => {
    try {
      const response = await fetch(job.dataset.jobUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) {
        show(job, await response.json());
      } else if (response.status === 404) {
        job.dataset.jobStatus = "gone";  // its repository was deleted: out of the viewer's sight
      }
    } catch (error) {
      // The network or server hiccuped: try again on the next round.
    }
  };

  const poll = async () => {
    await Promise.all(unfinished().map(read));
    if (unfinished().length > 0) {
      window.setTimeout(poll, POLL_MS);
      return;
    }
    const deleted = jobs.some(
      (job) => job.dataset.jobKind === "delete" && ["succeeded", "gone"].includes(job.dataset.jobStatus),
    );
    window.location.assign(
      deleted ? container.dataset.goneUrl : container.dataset.reloadUrl || window.location.pathname,
    );
  };
  window.setTimeout(poll, POLL_MS);
})();
