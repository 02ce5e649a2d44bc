// Behaviour for the Gatehouse console. Served as a file so the pages need no inline script.
"use strict";

// A form with data-confirm="Question?" submits only once the user has said yes.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
