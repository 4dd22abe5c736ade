/* Credential forms show only the fields of the selected kind (each field lists its kinds in data-kinds). */
(function () {
  "use strict";
  document.querySelectorAll(".credential-form").forEach((form) => {
    const kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    const sync = () => form.querySelectorAll(".kind-field").forEach((el) => {
      const input = el.querySelector("[data-kinds]");
      const on = !!input && input.dataset.kinds.split(" ").includes(kind.value);
      el.hidden = !on;
      el.querySelectorAll("input").forEach((i) => { i.disabled = !on; });
    });
    kind.addEventListener("change", sync);
    sync();
  });
})();
