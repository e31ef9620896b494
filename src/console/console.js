// The console's only script: parts marked data-refresh reload themselves every 3 seconds
// (new hand-offs, new messages) without reloading the page; a lost session goes to login.
"use strict";
(function () {
  var EVERY = 3000;
  function scrollDown(el) {
    var list = el.querySelector(".history");
    if (list) list.scrollTop = list.scrollHeight;
  }
  function refresh(el) {
    fetch(el.dataset.refresh, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.redirected || r.status === 401) { location.href = "/console/login"; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === el.innerHTML) return;
        var list = el.querySelector(".history");
        var atEnd = !list || list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
        el.innerHTML = html;
        if (el.hasAttribute("data-scroll") && atEnd) scrollDown(el);
      })
      .catch(function () {});
  }
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    if (el.hasAttribute("data-scroll")) scrollDown(el);
    setInterval(function () { refresh(el); }, EVERY);
  });
})();
