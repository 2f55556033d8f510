// reconciler site: client-side search over object names, descriptions and columns (the index is
// window.RECONCILER_SEARCH, written by `reconciler site` into search-index.js: a script, since a page
// opened from file:// may not fetch a JSON file; loaded the first time the search box has focus). Part of reconciler, under its licence. Hits are built
// with textContent only: a description is text, never markup.
(function () {
  "use strict";
  var input = document.getElementById("search");
  var list = document.getElementById("hits");
  var entries = null;   // until the index has loaded
  if (!input || !list) return;
  var root = input.getAttribute("data-root") || "";

  // The index (megabytes for a large landscape) is loaded when a person first goes to the search box,
  // not by every page that opens.
  function load() {
    if (document.getElementById("search-index")) return;
    var script = document.createElement("script");
    script.id = "search-index";
    script.src = root + "assets/search-index.js";
    script.onload = function () { entries = window.RECONCILER_SEARCH || []; show(); };
    script.onerror = function () { entries = []; show(); };
    document.body.appendChild(script);
  }

  function matches(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var hits = [];
    for (var i = 0; i < entries.length && hits.length < 30; i++) {
      var entry = entries[i];
      if (words.every(function (word) { return entry.text.indexOf(word) !== -1; })) hits.push(entry);
    }
    return hits;
  }

  function show() {
    list.textContent = "";
    var query = input.value.trim();
    if (!query) return;
    if (entries === null) {
      var waiting = document.createElement("li");
      waiting.textContent = "loading the index…";
      list.appendChild(waiting);
      return;
    }
    matches(query).forEach(function (entry) {
      var item = document.createElement("li");
      var anchor = document.createElement("a");
      anchor.href = root + entry.href;
      anchor.textContent = entry.label;
      var what = document.createElement("span");
      what.className = "what";
      what.textContent = " " + entry.what;
      item.appendChild(anchor);
      item.appendChild(what);
      list.appendChild(item);
    });
    if (!list.children.length) {
      var none = document.createElement("li");
      none.textContent = "no match";
      list.appendChild(none);
    }
  }

  function move(step) {
    var links = Array.prototype.slice.call(list.querySelectorAll("a"));
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var next = at === -1 ? (step > 0 ? 0 : links.length - 1) : at + step;
    if (next < 0) { input.focus(); return; }
    links[Math.min(next, links.length - 1)].focus();
  }

  input.addEventListener("focus", load);
  input.addEventListener("input", show);
  document.querySelector("form.search").addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") { move(1); event.preventDefault(); }
    else if (event.key === "ArrowUp") { move(-1); event.preventDefault(); }
    else if (event.key === "Escape") { input.value = ""; show(); input.focus(); }
    else if (event.key === "Enter" && document.activeElement === input) {
      var first = list.querySelector("a");
      if (first) first.click();
    }
  });
})();
