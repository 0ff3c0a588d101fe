// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // htmx requests that change state carry the CSRF token as Litestar's X-CSRFToken
  // header, read from the csrftoken cookie at request time (it is set on the first
  // page, after that page was rendered). Plain forms send it as _csrf_token.
  document.addEventListener("htmx:configRequest", function (event) {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) {
      event.detail.headers["X-CSRFToken"] = decodeURIComponent(match[1]);
    }
  });

  // After a day is picked and its slots swapped in, move focus to the slot list's
  // heading so keyboard and screen-reader users land where the choice continues.
  var trigger = "";
  document.addEventListener("htmx:beforeRequest", function (event) {
    trigger = (event.detail.elt && event.detail.elt.id) || "";
    // The picker says it is busy while a day or month loads (the indicator shows too).
    var picker = document.getElementById("picker");
    if (picker) {
      picker.setAttribute("aria-busy", "true");
    }
  });
  document.addEventListener("htmx:afterRequest", function () {
    var picker = document.getElementById("picker");
    if (picker) {
      picker.removeAttribute("aria-busy");
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (trigger.indexOf("day-") === 0) {
      var heading = document.getElementById("slots-title");
      if (heading) {
        heading.focus();
      }
    }
    trigger = "";
  });
})();
