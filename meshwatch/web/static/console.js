// meshwatch console: live fleet updates over server-sent events (/events), no reload.
// Each `health` event updates the asset's element in place; `broker` shows or hides the banner.
"use strict";
(function () {
  if (!window.EventSource) { return; }
  var source = new EventSource("/events");
  // A page left must give its connection back: a browser keeps 6 per server, and the 7th
  // page would wait for one.
  window.addEventListener("pagehide", function () { source.close(); });

  function field(el, name, value) {
    var part = el.querySelector("." + name);
    if (part) { part.textContent = value || ""; }
  }

  function newAsset(data) {
    var list = null;
    document.querySelectorAll("section.site").forEach(function (section) {
      if (section.dataset.site === data.site) { list = section.querySelector("ul.assets"); }
    });
    if (!list) { return null; }
    var li = document.createElement("li");
    li.className = "asset";
    li.dataset.asset = data.site + "/" + data.asset;
    var link = document.createElement("a");
    link.className = "name";
    link.href = "/assets/" + encodeURIComponent(data.site) + "/" + encodeURIComponent(data.asset);
    link.textContent = data.asset;
    li.appendChild(link);
    ["status", "since", "reason", "top-metric"].forEach(function (name) {
      var span = document.createElement("span");
      span.className = name;
      li.appendChild(span);
      li.appendChild(document.createTextNode(" "));
    });
    list.appendChild(li);
    return li;
  }

  source.addEventListener("health", function (message) {
    var data = JSON.parse(message.data);
    var key = data.site + "/" + data.asset;
    var found = [];
    document.querySelectorAll("[data-asset]").forEach(function (el) {
      if (el.dataset.asset === key && !el.matches("form")) { found.push(el); }
    });
    if (!found.length && document.getElementById("fleet")) {
      var made = newAsset(data);
      if (made) { found.push(made); }
    }
    found.forEach(function (el) {
      el.dataset.status = data.status;
      field(el, "status", data.status);
      field(el, "since", data.since);
      field(el, "reason", data.reason);
      field(el, "top-metric", data.top_metric);
    });
  });

  source.addEventListener("broker", function (message) {
    var data = JSON.parse(message.data);
    var banner = document.getElementById("broker-banner");
    if (data.connected && banner) {
      banner.remove();
    } else if (!data.connected && !banner) {
      banner = document.createElement("div");
      banner.id = "broker-banner";
      banner.setAttribute("role", "alert");
      banner.textContent = "The MQTT broker cannot be reached: showing the last known state; " +
        "actions cannot be sent.";
      document.body.insertBefore(banner, document.getElementById("main"));
    }
  });
})();
