// Starts Swagger UI for chatcore (see adapters/http/docs.py). The page puts its settings
// in a JSON block, so no inline script is needed and nothing is loaded from elsewhere.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("swagger-config").textContent);

  // A browser logged in through "Try it out" on /api/login/ holds the session cookie;
  // requests that change state must then echo the csrftoken cookie in X-CSRFToken.
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  config.presets = [SwaggerUIBundle.presets.apis];
  config.layout = "BaseLayout";
  config.requestInterceptor = function (request) {
    var token = csrfToken();
    if (token && !request.headers["X-CSRFToken"]) {
      request.headers["X-CSRFToken"] = token;
    }
    return request;
  };
  window.ui = SwaggerUIBundle(config);
})();
