// Keep expanded timeline rows open while htmx replaces the live part of a run's page.
(function () {
  let open = [];
  document.addEventListener("htmx:beforeSwap", function () {
    open = Array.from(document.querySelectorAll("details[open][id]"), (d) => d.id);
  });
  document.addEventListener("htmx:afterSwap", function () {
    for (const id of open) {
      const el = document.getElementById(id);
      if (el) el.open = true;
    }
  });
})();
