// saltant web UI: live updates (docs/ui.md). The only script of the pages; the
// Content-Security-Policy allows no inline script. Server text is inserted as text only.
(function () {
  "use strict";

  var waiting = null;
  var again = false;

  // Fetches this page again and swaps in its fresh [data-live] regions (at most one
  // fetch at a time; events arriving meanwhile cause one more).
  function refresh() {
    if (waiting) { again = true; return; }
    waiting = setTimeout(function () {
      fetch(location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html) {
            var doc = new DOMParser().parseFromString(html, "text/html");
            document.querySelectorAll("[data-live]").forEach(function (el) {
              var fresh = doc.getElementById(el.id);
              if (fresh && !el.contains(document.activeElement)) {
                el.replaceWith(document.adoptNode(fresh));
              }
            });
          }
        })
        .catch(function () {})
        .then(function () {
          waiting = null;
          if (again) { again = false; refresh(); }
        });
    }, 250);
  }

  function follow() {
    var body = document.body;
    if (!document.querySelector("[data-live]")) return;
    if (body.dataset.events && window.EventSource) {
      var es = new EventSource(body.dataset.events);
      es.onmessage = refresh;
      // An instance's stream ends with `end` once it is final.
      es.addEventListener("end", function () { es.close(); refresh(); });
    }
    if (body.dataset.poll) {
      setInterval(refresh, Math.max(1000, parseInt(body.dataset.poll, 10) || 5000));
    }
  }

  // Log tails: the API's tail stream, appended as text.
  function tails() {
    document.querySelectorAll("pre[data-tail]").forEach(function (pre) {
      if (!window.EventSource) return;
      var status = document.getElementById(pre.id + "-status");
      var es = new EventSource(pre.dataset.tail);
      es.addEventListener("output", function (e) {
        var text = JSON.parse(e.data).text;
        pre.appendChild(document.createTextNode(text));
      });
      es.addEventListener("truncated", function (e) {
        var n = JSON.parse(e.data).dropped_bytes;
        pre.appendChild(document.createTextNode("\n[" + n + " bytes dropped by the output limit]\n"));
      });
      es.addEventListener("end", function (e) {
        es.close();
        var end = JSON.parse(e.data);
        pre.dataset.done = "true";
        if (status) status.textContent = end.complete ? "Complete (" + end.size + " bytes)." : "Incomplete: some output was lost.";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    follow();
    tails();
  });
})();
