// Typeset the formulas pymdownx.arithmatex (generic mode) marks: <span class="arithmatex">\(…\)</span>
// and <div class="arithmatex">\[…\]</div>, with the vendored KaTeX (no network access needed).
// A formula KaTeX cannot parse is shown in red with the error (throwOnError: false), never as raw TeX
// silently; tests/test_docs.py parses every formula of the built site with the same KaTeX.
(function () {
  "use strict";
  var MACROS = {
    "\\R": "\\mathbb{R}",
    "\\prox": "\\operatorname{prox}",
    "\\env": "\\operatorname{env}",
    "\\argmin": "\\operatorname*{arg\\,min}",
    "\\dom": "\\operatorname{dom}",
    "\\dist": "\\operatorname{dist}",
    "\\sign": "\\operatorname{sign}",
    "\\TV": "\\operatorname{TV}",
    "\\diag": "\\operatorname{diag}"
  };
  if (typeof module !== "undefined" && module.exports) {
    module.exports = { macros: MACROS };  // for the formula check in tests/test_docs.py (node)
    return;
  }
  function render(root) {
    var nodes = root.querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.getAttribute("data-rendered")) continue;
      var tex = node.textContent.trim();
      var display = node.tagName === "DIV";
      if (display) {
        tex = tex.replace(/^\\\[/, "").replace(/\\\]$/, "");
      } else {
        tex = tex.replace(/^\\\(/, "").replace(/\\\)$/, "");
      }
      katex.render(tex, node, {
        displayMode: display,
        throwOnError: false,
        macros: MACROS
      });
      node.setAttribute("data-rendered", "1");
    }
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { render(document.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { render(document.body); });
  }
})();
