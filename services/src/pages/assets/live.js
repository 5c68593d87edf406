// fieldtrail: live updates of a page, a progressive enhancement (the page works without it).
// A page with a live region (#live[data-live-stream="TYPE/ID"][data-position="N"]) follows
// /events/stream from position N (the browser's EventSource resumes after a dropped
// connection with Last-Event-ID, so no event is missed). On an event of the page's stream it
// fetches the region again with min_position = the event's position (the server answers once
// its read models include it) and swaps it in: the page always shows one consistent read-model
// state, so an event seen twice cannot show twice.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region || !region.dataset.liveStream || !window.EventSource || !window.fetch) {
    return;
  }
  var parts = region.dataset.liveStream.split("/");
  var streamType = parts[0];
  var streamId = parts.slice(1).join("/");
  var shown = Number(region.dataset.position || "0");
  var wanted = shown;
  var busy = false;

  function status(text) {
    var line = document.querySelector("#live .live-status");
    if (line) {
      line.textContent = text;
    }
  }

  function refresh() {
    if (busy || wanted <= shown) {
      return;
    }
    busy = true;
    var target = wanted;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    url.searchParams.set("min_position", String(target));
    fetch(url.toString(), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html;
        var fresh = template.content.getElementById("live");
        var current = document.getElementById("live");
        if (fresh && current) {
          current.replaceWith(fresh);
          shown = Math.max(target, Number(fresh.dataset.position || "0"));
          document.documentElement.dataset.livePosition = String(shown);
          status("Mis à jour en direct (position " + shown + ").");
        }
      })
      .catch(function () {
        status("Mise à jour en attente ; nouvel essai dans un instant.");
        return new Promise(function (resolve) { setTimeout(resolve, 1000); });
      })
      .then(function () {
        busy = false;
        refresh();
      });
  }

  // The last event seen: where a new connection resumes when the browser gave up on the old
  // one (an HTTP error such as 503 closes an EventSource for good; a network error does not).
  var seen = shown;

  function connect() {
    var source = new EventSource(
      "/events/stream?after=" + encodeURIComponent(String(seen)) +
        "&stream_type=" + encodeURIComponent(streamType)
    );
    source.onmessage = function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      var position = Number(message.lastEventId || event.position || 0);
      seen = Math.max(seen, position);
      if (event.stream_type === streamType && event.stream_id === streamId) {
        wanted = Math.max(wanted, position);
        refresh();
      }
    };
    source.onerror = function () {
      status("Connexion au direct interrompue ; reprise automatique…");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 2000);
      }
    };
    source.onopen = function () {
      document.documentElement.dataset.liveConnected = "1";
    };
  }
  connect();
})();
