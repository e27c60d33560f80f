// Starts ReDoc for chatcore (see adapters/http/docs.py), with the settings the page
// carries in a JSON block.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("redoc-config").textContent);
  Redoc.init(config.url, config.options, document.getElementById("redoc"));
})();
