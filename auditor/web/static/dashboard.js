// Progressive enhancement only: every page reads and works without this script.
// A filter form whose select changes submits itself (the Apply button stays for keyboards).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.filters[method=get] select").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form && select.form.dataset.autosubmit !== "off") select.form.requestSubmit();
    });
  });
});
