/* The status page: polls status.json every second and draws each feed's state, rate and
   drops (sparklines of the last minute), subscribers per topic, last message, holder.
   Everything from the server goes in as text (textContent), never as HTML. */
(function () {
  "use strict";

  var root = document.getElementById("zf-status");
  if (!root) return;
  var url = root.dataset.url;
  var feedsBox = document.getElementById("zf-status-feeds");
  var problemsBox = document.getElementById("zf-status-problems");
  var processesBox = document.getElementById("zf-status-processes");
  var updated = document.getElementById("zf-status-updated");
  var modeLine = document.getElementById("zf-status-mode");
  var cards = {}; // slug -> {card, parts}
  var lastOk = 0;
  var POLL_MS = 1000;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function number(value) {
    if (value >= 100) return value.toFixed(0);
    if (value >= 10) return value.toFixed(1);
    return value.toFixed(value ? 2 : 0);
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 1) return "just now";
    if (seconds < 90) return seconds.toFixed(0) + " s ago";
    if (seconds < 5400) return (seconds / 60).toFixed(0) + " min ago";
    if (seconds < 172800) return (seconds / 3600).toFixed(0) + " h ago";
    return (seconds / 86400).toFixed(0) + " days ago";
  }

  /* A sparkline: the values as a line over a light fill, scaled to their own maximum. */
  function sparkline(canvas, values, color) {
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 160;
    var height = canvas.clientHeight || 28;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (!values || !values.length) values = [0, 0];
    var max = Math.max.apply(null, values) || 1;
    var step = values.length > 1 ? width / (values.length - 1) : width;
    var pad = 2;
    function y(v) { return height - pad - (v / max) * (height - 2 * pad); }
    ctx.beginPath();
    ctx.moveTo(0, y(values[0]));
    for (var i = 1; i < values.length; i++) ctx.lineTo(i * step, y(values[i]));
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = color;
    ctx.stroke();
    ctx.lineTo(width, height);
    ctx.lineTo(0, height);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }

  function colour(name) {
    return getComputedStyle(root).getPropertyValue(name).trim() || "#1f5fbf";
  }

  function card(feed) {
    var found = cards[feed.slug];
    if (found) return found;
    var parts = {};
    var node = el("article", "zf-status-card");
    node.dataset.feed = feed.slug;
    var head = el("header", "zf-status-card-head");
    parts.title = el("span", "zf-status-name");
    parts.badge = el("span", "zf-badge");
    parts.badge.setAttribute("data-role", "state");
    head.appendChild(parts.title);
    head.appendChild(parts.badge);
    node.appendChild(head);
    parts.detail = el("p", "zf-status-detail");
    node.appendChild(parts.detail);

    var rate = el("div", "zf-status-row");
    parts.rate = el("span", "zf-status-figure");
    parts.rate.setAttribute("data-role", "rate");
    parts.rateLine = el("canvas", "zf-spark");
    parts.rateLine.setAttribute("aria-hidden", "true");
    rate.appendChild(parts.rate);
    rate.appendChild(parts.rateLine);
    node.appendChild(rate);

    parts.drops = el("div", "zf-status-drops");
    node.appendChild(parts.drops);

    var facts = el("dl", "zf-status-facts");
    function fact(label, role) {
      var row = el("div");
      row.appendChild(el("dt", null, label));
      var dd = el("dd");
      dd.setAttribute("data-role", role);
      row.appendChild(dd);
      facts.appendChild(row);
      return dd;
    }
    parts.age = fact("last message", "age");
    parts.subscribers = fact("subscribers", "subscribers");
    parts.holder = fact("read by", "holder");
    parts.endpoints = fact("endpoints", "endpoints");
    node.appendChild(facts);
    found = cards[feed.slug] = { card: node, parts: parts, drops: {} };
    return found;
  }

  function drawDrops(entry, feed) {
    var box = entry.parts.drops;
    var reasons = Object.keys(feed.drops || {});
    if (!reasons.length) {
      if (!box.dataset.none) {
        box.textContent = "";
        box.appendChild(el("span", "zf-muted", "no drops"));
        box.dataset.none = "1";
        entry.drops = {};
      }
      return;
    }
    if (box.dataset.none) { box.textContent = ""; delete box.dataset.none; }
    reasons.forEach(function (reason) {
      var row = entry.drops[reason];
      if (!row) {
        row = { node: el("div", "zf-status-row zf-status-drop") };
        row.label = el("span", "zf-status-figure");
        row.line = el("canvas", "zf-spark");
        row.line.setAttribute("aria-hidden", "true");
        row.node.appendChild(row.label);
        row.node.appendChild(row.line);
        row.node.dataset.reason = reason;
        box.appendChild(row.node);
        entry.drops[reason] = row;
      }
      var drop = feed.drops[reason];
      row.label.textContent = "";
      row.label.appendChild(el("strong", null, number(drop.rate)));
      row.label.appendChild(document.createTextNode("/s " + reason + " "));
      row.label.appendChild(el("span", "zf-muted", "(" + drop.total + ")"));
      sparkline(row.line, drop.series, colour("--zf-bad"));
    });
  }

  function holderText(feed, body) {
    if (body.leases) {
      if (feed.holder) {
        var since = new Date(feed.holder.since * 1000);
        return feed.holder.host + ":" + feed.holder.pid + " (lease since " +
          since.toLocaleTimeString() + ")";
      }
      return feed.state === "disabled" ? "–" : "no lease holder";
    }
    return feed.process || "–";
  }

  function draw(feed, body) {
    var entry = card(feed);
    var p = entry.parts;
    p.title.textContent = "";
    if (feed.url) {
      var link = el("a", null, feed.name);
      link.href = feed.url;
      p.title.appendChild(link);
    } else {
      p.title.appendChild(el("span", null, feed.name));
    }
    p.title.appendChild(el("span", "zf-muted", " " + feed.slug));
    p.badge.textContent = feed.state;
    p.badge.dataset.state = feed.state;
    entry.card.dataset.state = feed.state;
    p.detail.textContent = feed.detail || "";
    p.detail.hidden = !feed.detail;
    p.rate.textContent = "";
    p.rate.appendChild(el("strong", null, number(feed.rate)));
    p.rate.appendChild(document.createTextNode(" msg/s"));
    sparkline(p.rateLine, feed.series, colour("--zf-accent"));
    drawDrops(entry, feed);
    p.age.textContent = age(feed.age);
    p.subscribers.textContent = "";
    if (!feed.topics.length) {
      p.subscribers.appendChild(el("span", "zf-muted", "no topics"));
    }
    feed.topics.forEach(function (topic) {
      var item = el("span", "zf-status-topic");
      item.dataset.topic = topic.slug;
      item.appendChild(document.createTextNode(topic.name + " "));
      item.appendChild(el("strong", null, String(topic.subscribers)));
      p.subscribers.appendChild(item);
    });
    var holder = holderText(feed, body);
    if (feed.role === "standby") holder += " (standby)";
    if (feed.standbys) holder += ", " + feed.standbys + " standing by";
    p.holder.textContent = holder;
    p.endpoints.textContent = (feed.bind ? "bind " : "connect ") + feed.endpoints.join(", ");
    return entry.card;
  }

  function render(body) {
    var seen = {};
    body.feeds.forEach(function (feed, index) {
      var node = draw(feed, body);
      seen[feed.slug] = true;
      if (feedsBox.children[index] !== node) feedsBox.insertBefore(node, feedsBox.children[index] || null);
    });
    Object.keys(cards).forEach(function (slug) {
      if (!seen[slug]) { cards[slug].card.remove(); delete cards[slug]; }
    });
    if (!body.feeds.length && !feedsBox.querySelector(".zf-empty")) {
      feedsBox.appendChild(el("p", "zf-empty", "No feeds are configured."));
    } else if (body.feeds.length) {
      var empty = feedsBox.querySelector(".zf-empty");
      if (empty) empty.remove();
    }
    problemsBox.textContent = "";
    (body.problems || []).forEach(function (text) { problemsBox.appendChild(el("li", null, text)); });
    problemsBox.hidden = !(body.problems || []).length;
    processesBox.textContent = "";
    if (!body.processes.length) processesBox.appendChild(el("li", "zf-muted", "None reports."));
    body.processes.forEach(function (proc) {
      var item = el("li");
      item.appendChild(el("code", null, proc.process));
      item.appendChild(document.createTextNode(" " + proc.kind + ": " + proc.feeds + " feed(s), " +
        proc.subscriptions + " subscription(s), reported " + age(proc.age)));
      processesBox.appendChild(item);
    });
    modeLine.textContent = body.mode === "scaled" ? "scaled mode (zmq_subscribe processes)" :
      "embedded mode (this server reads the feeds)";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 403) throw new Error("only staff may see the status (log in again?)");
        if (!response.ok) throw new Error("status.json answered " + response.status);
        return response.json();
      })
      .then(function (body) {
        render(body);
        lastOk = Date.now();
        updated.textContent = "updated " + new Date(body.at * 1000).toLocaleTimeString();
        updated.removeAttribute("data-kind");
      })
      .catch(function (error) {
        updated.textContent = error.message + (lastOk ? "; last update " + age((Date.now() - lastOk) / 1000) : "");
        updated.dataset.kind = "error";
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  poll();
})();
