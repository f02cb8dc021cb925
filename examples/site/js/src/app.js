// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // The footer says the current year without a rebuild every January.
  function stampYear() {
    var el = document.querySelector("[data-year]");
    if (el) {
      el.textContent = String(new Date().getFullYear());
    }
  }

  // Readers like to know what they are getting into before they scroll.
  function readingTime() {
    var article = document.querySelector("article[data-reading-time]");
    var out = document.querySelector("[data-reading-time-out]");
    if (!article || !out) {
      return;
    }
    var words = article.textContent.trim().split(/\s+/).length;
    var minutes = Math.max(1, Math.round(words / 220));
    out.textContent = minutes + " min read";
    out.hidden = false;
  }

  // Mark the link to the page being shown, for pages that forgot to.
  function markCurrentLink() {
    var here = location.pathname.replace(/index\.html$/, "");
    document.querySelectorAll(".site-nav a").forEach(function (a) {
      var there = new URL(a.href, location.href).pathname.replace(/index\.html$/, "");
      if (there === here && !a.hasAttribute("aria-current")) {
        a.setAttribute("aria-current", "page");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    stampYear();
    readingTime();
    markCurrentLink();
  });
})();
