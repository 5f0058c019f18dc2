// Keys of the review page. An element with data-key="x" is a link to follow or a form to
// submit when x is pressed; on the queue, j/k move a cursor over the rows and Enter opens one.
// No framework and no build step: this file is served as it is.
"use strict";

(function () {
  let busy = false; // one decision per page: a second key press must not label twice

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
  }

  function queueRows() {
    return Array.from(document.querySelectorAll("#queue tbody tr[data-href]"));
  }

  function moveCursor(rows, step) {
    const current = rows.findIndex((row) => row.classList.contains("cursor"));
    const next = Math.min(Math.max(current + step, 0), rows.length - 1);
    if (current >= 0) rows[current].classList.remove("cursor");
    rows[next].classList.add("cursor");
    rows[next].scrollIntoView({ block: "nearest" });
  }

  function act(element) {
    if (element instanceof HTMLFormElement) {
      busy = true;
      element.requestSubmit();
    } else if (element instanceof HTMLAnchorElement) {
      busy = true;
      window.location.assign(element.href);
    }
  }

  document.addEventListener("keydown", (event) => {
    if (busy || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const rows = queueRows();
    if (rows.length) {
      if (event.key === "j" || event.key === "k") {
        moveCursor(rows, event.key === "j" ? 1 : -1);
        event.preventDefault();
        return;
      }
      const chosen = rows.find((row) => row.classList.contains("cursor"));
      if ((event.key === "Enter" || event.key === "o") && chosen) {
        busy = true;
        window.location.assign(chosen.dataset.href);
        event.preventDefault();
        return;
      }
    }
    const target = document.querySelector(`[data-key="${CSS.escape(event.key)}"]`);
    if (target) {
      event.preventDefault();
      act(target);
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const rows = queueRows();
    if (rows.length) rows[0].classList.add("cursor");
    for (const row of rows) {
      row.addEventListener("click", (event) => {
        if (!(event.target instanceof HTMLAnchorElement)) window.location.assign(row.dataset.href);
      });
    }
    // A click on a button submits too: mark the page busy so a key press cannot follow it.
    for (const form of document.querySelectorAll("form[data-key]")) {
      form.addEventListener("submit", () => { busy = true; });
    }
  });
})();
