/*
 * The live page of one feed (templates/zmqfeed/feed_detail.html), built on zmqfeed.js.
 *
 * Messages are queued as they arrive and drawn once per animation frame, newest first,
 * with at most data-max-rows rows in the DOM, so a fast feed costs the page little.
 * Everything from the wire is written with textContent, never parsed as HTML.
 */
(function () {
  "use strict";

  const root = document.getElementById("zf-live");
  if (!root || typeof ZmqFeed === "undefined") return;

  const feedSlug = root.dataset.feed;
  const maxRows = parseInt(root.dataset.maxRows, 10) || 200;
  const maxNotices = 20;
  const rateWindow = 5; // seconds

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $("zf-state"),
    rate: $("zf-rate"),
    count: $("zf-count"),
    rows: $("zf-messages"),
    notices: $("zf-notices"),
    pause: $("zf-pause"),
    clear: $("zf-clear"),
  };
  const seqCells = new Map();
  for (const cell of root.querySelectorAll("[data-seq-for]")) {
    seqCells.set(cell.dataset.seqFor, cell);
  }

  const client = new ZmqFeed(root.dataset.wsUrl || undefined);
  let queue = [];
  let drawScheduled = false;
  let paused = false;
  let total = 0;
  let thisSecond = 0;
  const perSecond = [];
  const latestSeq = new Map();

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function clock(ts) {
    const d = typeof ts === "number" ? new Date(ts * 1000) : new Date();
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    return (
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      "." + pad(d.getMilliseconds(), 3)
    );
  }

  function dataText(message) {
    const data = message.data;
    if (typeof data === "string") return data;
    return JSON.stringify(data);
  }

  function row(message) {
    const tr = document.createElement("tr");
    cell(tr, clock(message.ts), "zf-time");
    cell(tr, message.topic, "zf-topic");
    cell(tr, message.zmq_topic === undefined ? "" : message.zmq_topic, "zf-zmq-topic");
    cell(tr, message.seq === undefined ? "" : String(message.seq), "zf-num");
    const data = cell(tr, dataText(message), "zf-data");
    if (message.encoding) data.dataset.encoding = message.encoding;
    return tr;
  }

  function draw() {
    drawScheduled = false;
    const batch = queue.length > maxRows ? queue.slice(-maxRows) : queue;
    queue = [];
    if (batch.length) {
      const fragment = document.createDocumentFragment();
      for (let i = batch.length - 1; i >= 0; i--) fragment.appendChild(row(batch[i]));
      ui.rows.insertBefore(fragment, ui.rows.firstChild);
      while (ui.rows.rows.length > maxRows) ui.rows.deleteRow(-1);
    }
    ui.count.textContent = String(total);
    for (const [topic, seq] of latestSeq) {
      const target = seqCells.get(topic);
      if (target) target.textContent = String(seq);
    }
  }

  function scheduleDraw() {
    if (drawScheduled) return;
    drawScheduled = true;
    // Hidden tabs get no animation frames; the bounded queue waits for the next visible one.
    requestAnimationFrame(draw);
  }

  function onMessage(message) {
    total++;
    thisSecond++;
    if (typeof message.seq === "number") latestSeq.set(message.topic, message.seq);
    if (!paused) {
      queue.push(message);
      if (queue.length > 2 * maxRows) queue = queue.slice(-maxRows);
    }
    scheduleDraw();
  }

  function notice(text, kind) {
    const empty = ui.notices.querySelector(".zf-none");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.className = "zf-notice zf-notice-" + kind;
    const time = document.createElement("span");
    time.className = "zf-time";
    time.textContent = clock() + " ";
    li.append(time, document.createTextNode(text));
    ui.notices.insertBefore(li, ui.notices.firstChild);
    while (ui.notices.children.length > maxNotices) ui.notices.lastChild.remove();
  }

  client.on("state", (state, detail) => {
    ui.state.dataset.state = state;
    ui.state.textContent =
      state === "reconnecting" && detail.delay
        ? "reconnecting (" + (detail.delay / 1000).toFixed(1) + " s)"
        : state;
  });
  client.on("subscribed", ({ topic, seq }) => {
    if (typeof seq === "number" && !latestSeq.has(topic)) {
      latestSeq.set(topic, seq);
      scheduleDraw();
    }
  });
  client.on("gap", (gap) => {
    const count = gap.to_seq - gap.from_seq + 1;
    notice(
      gap.topic + ": " + count + " message" + (count === 1 ? "" : "s") + " missed (seq " +
        gap.from_seq + "–" + gap.to_seq + ", " + gap.reason + ")",
      "gap"
    );
  });
  client.on("reset", ({ topic, seq }) => {
    notice(topic + ": the gateway restarted its sequence at " + seq, "reset");
  });
  client.on("error", (error) => {
    const where = error.topic ? error.topic + ": " : "";
    notice(where + error.code + (error.detail ? " – " + error.detail : ""), "error");
  });
  client.on("unsubscribed", ({ topic }) => {
    // The subscription was refused or ended by the server: show the box as it is.
    const box = root.querySelector('input[data-topic="' + CSS.escape(topic) + '"]');
    if (box) box.checked = false;
  });

  for (const box of root.querySelectorAll("input[data-topic]")) {
    const topic = box.dataset.topic;
    if (box.checked) client.subscribe(feedSlug, topic, onMessage);
    box.addEventListener("change", () => {
      if (box.checked) client.subscribe(feedSlug, topic, onMessage);
      else client.unsubscribe(feedSlug, topic, onMessage);
    });
  }

  ui.pause.addEventListener("click", () => {
    paused = !paused;
    ui.pause.textContent = paused ? "Resume" : "Pause";
    ui.pause.setAttribute("aria-pressed", String(paused));
    if (paused) queue = [];
  });
  ui.clear.addEventListener("click", () => {
    queue = [];
    ui.rows.textContent = "";
  });

  setInterval(() => {
    perSecond.push(thisSecond);
    thisSecond = 0;
    if (perSecond.length > rateWindow) perSecond.shift();
    const rate = perSecond.reduce((a, b) => a + b, 0) / perSecond.length;
    ui.rate.textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
  }, 1000);

  window.zmqfeedLive = client; // for the console and for tests
})();
