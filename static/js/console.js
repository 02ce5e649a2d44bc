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

// Jobs that follow themselves. Inside [data-live-jobs="<the jobs API URL>"], each
// [data-job-id] element is a job (data-job-status, data-job-kind) with [data-job-field] parts.
// Every 2 s the unfinished ones are read from the API in one request and shown. Once none is
// left running, the page loads once more if it has a data-reload-url (so it shows what the
// jobs changed), or, when a deletion has finished, goes to data-gone-url; without either (the
// Jobs list) it simply stops.
(() => {
  const container = document.querySelector("[data-live-jobs]");
  if (!container) {
    return;
  }
  const FINISHED = ["succeeded", "failed", "gone"];
  const POLL_MS = 2000;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const jobs = [...container.querySelectorAll("[data-job-id]")];
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

  const PAGE = 500;  // the API's largest page: more jobs than that take several requests
  const read = async (everyone) => {
    for (let start = 0; start < everyone.length; start += PAGE) {
      await readPage(everyone.slice(start, start + PAGE));
    }
  };
  const readPage = async (waiting) => {
    const ids = waiting.map((job) => job.dataset.jobId);
    const query = new URLSearchParams({ id: ids.join(","), limit: String(ids.length) });
    try {
      const response = await fetch(`${container.dataset.liveJobs}?${query}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) {
        return;  // the server hiccuped: try again on the next round
      }
      const found = new Map((await response.json()).results.map((data) => [String(data.id), data]));
      for (const job of waiting) {
        const data = found.get(job.dataset.jobId);
        if (data) {
          show(job, data);
        } else {
          job.dataset.jobStatus = "gone";  // its repository was deleted: out of the viewer's sight
        }
      }
    } catch (error) {
      // The network hiccuped: try again on the next round.
    }
  };

  const poll = async () => {
    await read(unfinished());
    if (unfinished().length > 0) {
      window.setTimeout(poll, POLL_MS);
      return;
    }
    const deleted = jobs.some(
      (job) => job.dataset.jobKind === "delete" && ["succeeded", "gone"].includes(job.dataset.jobStatus),
    );
    if (deleted && container.dataset.goneUrl) {
      window.location.assign(container.dataset.goneUrl);
    } else if (container.dataset.reloadUrl) {
      window.location.assign(container.dataset.reloadUrl);
    }
  };
  window.setTimeout(poll, POLL_MS);
})();

// Repositories that follow themselves. [data-live-repositories="<progress URL>"] holds rows
// ([data-repository-id]) whose state badge ([data-repository-state]) the poll updates while
// they are pending; #batch-progress (data-batch="<id ranges>") is a bulk creation, whose
// counter ("n of N ready, k failed"), bar and failures the poll keeps current. Polling stops
// once the batch is done and no row is pending. Without JavaScript a reload shows the same.
(() => {
  const list = document.querySelector("[data-live-repositories]");
  if (!list) {
    return;
  }
  const POLL_MS = 2000;
  const card = document.getElementById("batch-progress");
  let batchDone = !card || card.dataset.batchDone === "true";
  const watched = new Set(
    [...list.querySelectorAll("[data-repository-id]")]
      .filter((row) => row.querySelector("[data-repository-state=pending]"))
      .map((row) => row.dataset.repositoryId),
  );
  if (batchDone && watched.size === 0) {
    return;
  }

  const showRows = (states) => {
    for (const id of [...watched]) {
      const row = list.querySelector(`[data-repository-id="${id}"]`);
      const data = states[id];
      if (!data) {
        watched.delete(id);  // deleted, or out of the viewer's sight
        continue;
      }
      const badge = row.querySelector("[data-repository-state]");
      badge.dataset.repositoryState = data.state;
      badge.className = `badge badge-${data.state}`;
      badge.textContent = data.label;
      if (data.state !== "pending") {
        watched.delete(id);
      }
    }
  };

  const failureItem = (failure) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.className = "mono";
    link.href = failure.url;
    link.textContent = failure.gun;
    item.append(link);
    if (failure.job_url) {
      const job = document.createElement("a");
      job.href = failure.job_url;
      job.textContent = `job ${failure.job_id}`;
      const error = document.createElement("span");
      error.className = "error-text";
      error.textContent = failure.error;
      item.append(" · ", job, " ", error);
    }
    return item;
  };

  const showBatch = (batch) => {
    batchDone = batch.done;
    card.dataset.batchDone = String(batch.done);
    document.getElementById("batch-counter").textContent = batch.text;
    const pending = document.getElementById("batch-pending");
    pending.textContent = `· ${batch.pending} pending`;
    pending.hidden = batch.pending === 0;
    const bar = document.getElementById("batch-bar");
    bar.max = batch.total;
    bar.value = batch.ready + batch.failed;
    bar.textContent = batch.text;
    document.getElementById("batch-failures").hidden = batch.failures.length === 0;
    card.querySelector(".batch-failures").replaceChildren(...batch.failures.map(failureItem));
    document.getElementById("batch-failures-more").hidden = batch.failed <= batch.failures.length;
  };

  const poll = async () => {
    const query = new URLSearchParams();
    if (!batchDone) {
      query.set("batch", card.dataset.batch);
    }
    if (watched.size > 0) {
      query.set("ids", [...watched].join(","));
    }
    try {
      const response = await fetch(`${list.dataset.liveRepositories}?${query}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) {
        const data = await response.json();
        if (data.batch) {
          showBatch(data.batch);
        }
        showRows(data.repositories);
      }
    } catch (error) {
      // The network or server hiccuped: try again on the next round.
    }
    if (!batchDone || watched.size > 0) {
      window.setTimeout(poll, POLL_MS);
    }
  };
  window.setTimeout(poll, POLL_MS);
})();
