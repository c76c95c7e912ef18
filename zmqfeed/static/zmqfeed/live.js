/*
 * The live page of one feed (templates/zmqfeed/feed_detail.html), built on zmqfeed.js.
 *
 * Messages are queued as they arrive and drawn once per animation frame, newest first,
 * with at most data-max-rows rows in the DOM, so a fast feed costs the page little.
 * Everything from the wire is written with textContent, never parsed as HTML.
 *
 * Each message's data is shown by its kind, read from the envelope itself:
 *   binary    `encoding: "base64"`: size and first bytes; a hex dump on expand
 *   hex       `encoding: "hex"`: the same
 *   text      a string: as text (long text collapsed to its first line)
 *   jupyter   an object with header (with msg_type), parent_header and content: the
 *             message type and its text; the whole message on expand
 *   json      any other value: on one line when short, else pretty-printed and
 *             collapsible (collapsed to `{12 keys}` / `[40 items]` when big)
 * `parts` (further frames) and `upstream_seq` (the publisher's own number) are shown too.
 * What is hidden in a collapsed block is built when it is first opened.
 *
 * Numbers in JSON messages feed the chart (chart.js), redrawn in the same animation frame.
 * Topics are shown by their names; a topic the server does not know yet (saved a moment
 * ago) is retried by zmqfeed.js, and said so beside its box.
 */
(function () {
  "use strict";

  const root = document.getElementById("zf-live");
  if (!root || typeof ZmqFeed === "undefined") return;

  const feedSlug = root.dataset.feed;
  const maxRows = parseInt(root.dataset.maxRows, 10) || 200;
  // The server reloads its configuration this often: a topic saved a moment ago is retried
  // for a few of its periods before the page gives up on it.
  const reloadInterval = parseFloat(root.dataset.reloadInterval) || 2;
  const maxNotices = 20;
  const rateWindow = 5; // seconds

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $("zf-state"),
    rate: $("zf-rate"),
    count: $("zf-count"),
    table: $("zf-table"),
    rows: $("zf-messages"),
    notices: $("zf-notices"),
    pause: $("zf-pause"),
    clear: $("zf-clear"),
  };
  const seqCells = new Map();
  for (const cell of root.querySelectorAll("[data-seq-for]")) {
    seqCells.set(cell.dataset.seqFor, cell);
  }
  const topicNames = new Map(); // slug -> the name the page shows
  for (const box of root.querySelectorAll("input[data-topic]")) {
    const name = box.closest("li").querySelector(".zf-topic-name");
    topicNames.set(box.dataset.topic, name ? name.textContent.trim() : box.dataset.topic);
  }
  const nameOf = (slug) => topicNames.get(slug) || slug;
  const statusOf = (slug) => root.querySelector('[data-status-for="' + CSS.escape(slug) + '"]');

  const client = new ZmqFeed(root.dataset.wsUrl || undefined, {
    notFoundRetry: Math.max(8000, 4000 * reloadInterval),
  });
  const chart =
    typeof ZmqFeedChart !== "undefined" && typeof uPlot !== "undefined"
      ? new ZmqFeedChart(
          {
            card: $("zf-chart-card"),
            plot: $("zf-chart"),
            field: $("zf-field"),
            window: $("zf-window"),
            note: $("zf-chart-note"),
          },
          { nameOf, storageKey: "zmqfeed.chart." + feedSlug }
        )
      : null;
  let queue = [];
  let drawScheduled = false;
  let paused = false;
  let total = 0;
  let drawn = 0; // rows ever drawn: stripes follow the row, not its position
  let thisSecond = 0;
  const perSecond = [];
  const latestSeq = new Map();

  // How big a value may be before it is folded.
  const INLINE_MAX = 80; // characters of compact JSON shown as it is, on one line
  const OPEN_MAX_CHARS = 200; // a value up to this size (compact) and
  const OPEN_MAX_LINES = 6; // this many pretty lines starts open; a bigger one folded
  const NESTED_INLINE_MAX = 60; // inside a pretty value: members this short stay on one line
  const NESTED_OPEN_MAX = 2000; // and members bigger than this start folded
  const TEXT_MAX_CHARS = 500; // text longer than this or
  const TEXT_MAX_LINES = 12; // with more lines is folded to its first line
  const PREVIEW_MAX = 300; // characters put in a folded block's one-line preview
  const HEAD_BYTES = 8; // bytes shown as hex in a binary value's summary
  const DUMP_MAX = 65536; // bytes of a hex dump; beyond, the value as sent is shown

  // DOM helpers.

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function plural(n, word) {
    return n.toLocaleString("en") + " " + word + (n === 1 ? "" : "s");
  }

  function lineCount(text) {
    let n = 1;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
    return n;
  }

  function hasOwn(object, key) {
    return Object.prototype.hasOwnProperty.call(object, key);
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  /*
   * A folding block: <details> whose <summary> is `summary`; `fill(body)` builds the body
   * the first time it opens (at once when `open`).
   */
  function fold(className, summary, fill, open) {
    const details = el("details", className);
    const head = el("summary");
    head.append(...summary);
    const body = el("div", "zf-fold-body");
    details.append(head, body);
    let filled = false;
    const ensure = () => {
      if (filled || !details.open) return;
      filled = true;
      fill(body);
    };
    details.addEventListener("toggle", ensure);
    if (open) {
      details.open = true;
      ensure();
    }
    return details;
  }

  // JSON values.

  function scalarClass(value) {
    if (typeof value === "string") return "zf-j-str";
    if (typeof value === "number") return "zf-j-num";
    return "zf-j-lit"; // true, false, null
  }

  /*
   * A value on one line, with its tokens coloured. Its text is exactly JSON.stringify's
   * (what a copy gives); the spaces after `:` and `,` are drawn by the stylesheet.
   */
  function inlineJson(parent, value) {
    if (value === null || typeof value !== "object") {
      parent.append(el("span", scalarClass(value), JSON.stringify(value)));
      return;
    }
    const isArray = Array.isArray(value);
    parent.append(isArray ? "[" : "{");
    let first = true;
    for (const key of isArray ? value.keys() : Object.keys(value)) {
      if (!first) parent.append(el("span", "zf-j-comma", ","));
      first = false;
      if (!isArray) {
        parent.append(el("span", "zf-j-key", JSON.stringify(key)), el("span", "zf-j-colon", ":"));
      }
      inlineJson(parent, value[key]);
    }
    parent.append(isArray ? "]" : "}");
  }

  function sizeLabel(value) {
    return Array.isArray(value)
      ? plural(value.length, "item")
      : plural(Object.keys(value).length, "key");
  }

  // Lines of the pretty form below, up to `limit` (it stops counting there).
  function prettyLines(value, limit) {
    if (value === null || typeof value !== "object") return 1;
    if (JSON.stringify(value).length <= NESTED_INLINE_MAX) return 1;
    let lines = 2;
    for (const member of Object.values(value)) {
      lines += prettyLines(member, limit - lines);
      if (lines > limit) break;
    }
    return lines;
  }

  function keyLabel(parent, key) {
    if (key === null) return;
    parent.append(el("span", "zf-j-key", JSON.stringify(key)), ": ");
  }

  /*
   * One member of a pretty value: a line when it is a scalar or short, else a folding
   * block `"key": {` … `}` that reads `"key": {12 keys}` when folded.
   */
  function prettyMember(value, key, comma, open, preview) {
    const compact = value !== null && typeof value === "object" ? JSON.stringify(value) : null;
    if (compact === null || compact.length <= NESTED_INLINE_MAX) {
      const line = el("div", "zf-j-line");
      keyLabel(line, key);
      inlineJson(line, value);
      if (comma) line.append(",");
      return line;
    }
    const isArray = Array.isArray(value);
    const summary = [];
    const label = el("span", "zf-j-label");
    keyLabel(label, key);
    label.append(isArray ? "[" : "{");
    const shut = el("span", "zf-j-shut");
    shut.append(el("span", "zf-j-size", sizeLabel(value)), isArray ? "]" : "}");
    if (comma) shut.append(",");
    label.append(shut);
    summary.push(label);
    if (preview) summary.push(el("span", "zf-preview", compact.slice(0, PREVIEW_MAX)));
    return fold(
      "zf-j-node",
      summary,
      (body) => {
        const kids = el("div", "zf-j-kids");
        if (isArray && value.every((v) => v === null || typeof v !== "object")) {
          // Numbers, strings…: as many on a line as fit, not one per line.
          const flow = el("div", "zf-j-line zf-j-flow");
          value.forEach((v, i) => {
            flow.append(el("span", scalarClass(v), JSON.stringify(v)));
            if (i < value.length - 1) flow.append(el("span", "zf-j-comma", ","));
          });
          kids.append(flow);
          body.append(kids, el("div", "zf-j-end", "]" + (comma ? "," : "")));
          return;
        }
        const keys = isArray ? [...value.keys()] : Object.keys(value);
        keys.forEach((k, i) => {
          const member = value[k];
          const big = member !== null && typeof member === "object" &&
            JSON.stringify(member).length > NESTED_OPEN_MAX;
          kids.append(prettyMember(member, isArray ? null : k, i < keys.length - 1, !big, false));
        });
        body.append(kids, el("div", "zf-j-end", (isArray ? "]" : "}") + (comma ? "," : "")));
      },
      open
    );
  }

  /*
   * Any JSON value, as the data of a message or a part. `open`: pretty-printed and open
   * whatever its size (a whole Jupyter message, once asked for); else short values stay on
   * one line and big ones start folded.
   */
  function jsonView(value, open) {
    if (typeof value === "string") return textView(value);
    if (value === null || typeof value !== "object") {
      return el("span", scalarClass(value), JSON.stringify(value));
    }
    const compact = JSON.stringify(value);
    if (!open && compact.length <= INLINE_MAX) {
      const line = el("span", "zf-j-inline");
      inlineJson(line, value);
      return line;
    }
    const view = el("div", "zf-json");
    const small = compact.length <= OPEN_MAX_CHARS &&
      prettyLines(value, OPEN_MAX_LINES) <= OPEN_MAX_LINES;
    view.append(prettyMember(value, null, false, Boolean(open) || small, !open));
    return view;
  }

  // Text.

  function textView(text) {
    if (text.length <= TEXT_MAX_CHARS && lineCount(text) <= TEXT_MAX_LINES) {
      return el("span", "zf-text", text);
    }
    const newline = text.indexOf("\n");
    const first = (newline === -1 ? text : text.slice(0, newline)).slice(0, PREVIEW_MAX);
    return fold(
      "zf-text-fold",
      [
        el("span", "zf-preview", first),
        el("span", "zf-meta", plural(lineCount(text), "line") + " · " + plural(text.length, "char")),
      ],
      (body) => body.append(el("div", "zf-text", text))
    );
  }

  // Bytes: base64 or hex as sent.

  const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

  function byteSize(n) {
    if (n < 1024) return n.toLocaleString("en") + " B";
    const units = ["KiB", "MiB", "GiB"];
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return value.toFixed(value < 10 ? 1 : 0) + " " + units[unit];
  }

  function fromBase64(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function fromHex(text) {
    const bytes = new Uint8Array(text.length >> 1);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.substr(2 * i, 2), 16);
    return bytes;
  }

  /*
   * {size, head, bytes(limit)} of a base64 or hex value, or null when it is not one.
   * Only the first bytes are decoded for the summary; the rest when the dump is opened.
   */
  function byteValue(encoding, text) {
    try {
      if (encoding === "hex") {
        if (text.length % 2 || !/^[0-9a-fA-F]*$/.test(text)) return null;
        return {
          size: text.length / 2,
          head: fromHex(text.slice(0, 2 * HEAD_BYTES)),
          bytes: (limit) => fromHex(text.slice(0, 2 * limit)),
        };
      }
      const clean = text.replace(/\s+/g, "");
      const pad = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
      const size = Math.floor((clean.length * 3) / 4) - pad;
      const headChars = Math.ceil(HEAD_BYTES / 3) * 4;
      return {
        size,
        head: fromBase64(clean.slice(0, headChars)).slice(0, HEAD_BYTES),
        bytes: (limit) => fromBase64(clean.slice(0, Math.ceil(limit / 3) * 4)).slice(0, limit),
      };
    } catch (error) {
      return null; // not valid base64: shown as text
    }
  }

  // `hexdump -C`'s layout: offset, `perLine` bytes in hex (a gap after each 8), as ASCII.
  function hexDump(bytes, perLine) {
    const lines = [];
    for (let offset = 0; offset < bytes.length; offset += perLine) {
      let hex = "";
      let ascii = "";
      for (let i = 0; i < perLine; i++) {
        const b = bytes[offset + i];
        hex += offset + i < bytes.length ? HEX[b] + " " : "   ";
        if (i % 8 === 7 && i < perLine - 1) hex += " ";
        if (offset + i < bytes.length) ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
      }
      lines.push(offset.toString(16).padStart(8, "0") + "  " + hex + " " + ascii);
    }
    return lines.join("\n");
  }

  function bytesView(encoding, text) {
    const value = byteValue(encoding, text);
    if (!value) {
      const bad = el("span", "zf-text", text);
      bad.title = "not valid " + encoding;
      return bad;
    }
    let head = "";
    for (const b of value.head) head += HEX[b];
    const summary = [el("span", "zf-kind", encoding), el("span", "zf-size", byteSize(value.size))];
    if (value.size) {
      summary.push(el("span", "zf-first", "· " + head + (value.size > HEAD_BYTES ? "…" : "")));
    }
    return fold("zf-bytes", summary, (body) => {
      const shown = Math.min(value.size, DUMP_MAX);
      if (shown) {
        const dump = el("div", "zf-dump");
        body.append(dump);
        // 16 bytes a line when the cell is wide enough for it (76 characters), else 8.
        const probe = el("span", null, "0".repeat(10));
        dump.append(probe);
        const perLine = dump.clientWidth >= (probe.getBoundingClientRect().width / 10) * 78 ? 16 : 8;
        dump.textContent = hexDump(value.bytes(shown), perLine);
      }
      if (value.size > shown) {
        body.append(el("div", "zf-meta", "first " + byteSize(shown) + " of " + byteSize(value.size)));
      }
      body.append(
        fold(
          "zf-sent",
          [el("span", "zf-meta", "as sent (" + encoding + ", " + plural(text.length, "char") + ")")],
          (sent) => sent.append(el("div", "zf-raw", text))
        )
      );
    });
  }

  // Jupyter messages.

  const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

  function stripAnsi(text) {
    return text.replace(ANSI, "");
  }

  function isJupyter(data) {
    return (
      isObject(data) &&
      hasOwn(data, "header") && hasOwn(data, "parent_header") && hasOwn(data, "content") &&
      isObject(data.header) && typeof data.header.msg_type === "string"
    );
  }

  function asText(value) {
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join("");
    return null;
  }

  function jupyterView(message) {
    const type = message.header.msg_type;
    const content = isObject(message.content) ? message.content : {};
    const view = el("div", "zf-jup");
    const head = el("div", "zf-jup-head");
    const badge = el("span", "zf-jup-type", type);
    badge.dataset.msgType = type;
    head.append(badge);
    const aside = [];
    if (type === "stream" && typeof content.name === "string") aside.push(content.name);
    if (typeof content.execution_count === "number") {
      const label = type === "execute_input" ? "In" : type === "execute_result" ? "Out" : "";
      aside.push(label + "[" + content.execution_count + "]");
    }
    const parent = isObject(message.parent_header) ? message.parent_header.msg_type : undefined;
    if (typeof parent === "string") aside.push("← " + parent);
    if (aside.length) head.append(el("span", "zf-meta", aside.join(" · ")));
    view.append(head);

    let text = null;
    if (type === "stream") text = asText(content.text);
    else if (type === "execute_result" || type === "display_data" || type === "update_display_data") {
      const data = isObject(content.data) ? content.data : {};
      text = asText(data["text/plain"]);
      if (text === null && Object.keys(data).length) {
        head.append(el("span", "zf-meta", Object.keys(data).join(", ")));
      }
    } else if (type === "execute_input") text = asText(content.code);
    else if (type === "status") {
      const state = asText(content.execution_state);
      if (state !== null) {
        const line = el("span", "zf-jup-state", state);
        line.dataset.state = state;
        badge.after(line);
      }
    }
    if (type === "error" || (content.status === "error" && typeof content.ename === "string")) {
      view.append(el("div", "zf-jup-error", stripAnsi(String(content.ename) + ": " + String(content.evalue))));
      const traceback = Array.isArray(content.traceback) ? content.traceback : [];
      if (traceback.length) {
        const lines = stripAnsi(traceback.map(String).join("\n"));
        view.append(
          fold("zf-jup-tb", [el("span", "zf-meta", "traceback · " + plural(lineCount(lines), "line"))], (body) =>
            body.append(el("div", "zf-text", lines))
          )
        );
      }
    }
    if (text !== null) {
      const box = el("div", "zf-jup-text");
      if (type === "stream" && content.name === "stderr") box.classList.add("zf-jup-stderr");
      box.append(textView(stripAnsi(text).replace(/\n$/, "")));
      view.append(box);
    }

    const buffers = Array.isArray(message.buffers) ? message.buffers.length : 0;
    const raw = fold(
      "zf-jup-raw",
      [el("span", "zf-meta", "message" + (buffers ? " · " + plural(buffers, "buffer") : ""))],
      (body) => body.append(jsonView(message, true))
    );
    view.append(raw);
    return view;
  }

  // One message's data, and its parts.

  function kindOf(data, encoding) {
    if (typeof data === "string") {
      if (encoding === "base64" || encoding === "hex") return encoding === "hex" ? "hex" : "binary";
      return "text";
    }
    return isJupyter(data) ? "jupyter" : "json";
  }

  function valueView(data, encoding) {
    switch (kindOf(data, encoding)) {
      case "binary":
        return bytesView("base64", data);
      case "hex":
        return bytesView("hex", data);
      case "text":
        return textView(data);
      case "jupyter":
        return jupyterView(data);
      default:
        return jsonView(data);
    }
  }

  function partsView(parts, encoding) {
    return fold("zf-parts", [el("span", "zf-meta", "+ " + plural(parts.length, "part"))], (body) => {
      const list = el("ol", "zf-part-list");
      for (const part of parts) {
        const item = el("li");
        // Parts come decoded as the payload is: base64 on binary feeds, hex on hex feeds.
        item.append(valueView(part, typeof part === "string" ? encoding : undefined));
        list.append(item);
      }
      body.append(list);
    });
  }

  // The table.

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

  // A line across the table where messages are missing or the numbering started again.
  function markerRow(marker) {
    const tr = document.createElement("tr");
    tr.className = "zf-marker zf-marker-" + marker.kind;
    const td = tr.insertCell();
    td.colSpan = 6;
    td.textContent = clock() + "  " + marker.text;
    return tr;
  }

  function row(message) {
    if (message.marker) return markerRow(message.marker);
    const tr = document.createElement("tr");
    if (drawn++ % 2) tr.className = "zf-alt";
    if (message.replayed) {
      tr.classList.add("zf-replayed");
      tr.title = "replayed from the server's history";
    }
    cell(tr, clock(message.ts), "zf-time");
    const name = nameOf(message.topic);
    cell(tr, name, "zf-topic").title = name === message.topic ? name : name + " (" + message.topic + ")";
    const zmqTopic = message.zmq_topic === undefined ? "" : String(message.zmq_topic);
    cell(tr, zmqTopic, "zf-zmq-topic").title = zmqTopic;
    cell(tr, message.seq === undefined ? "" : String(message.seq), "zf-num");
    const upstream = Number.isInteger(message.upstream_seq) ? String(message.upstream_seq) : "";
    if (upstream && ui.table) ui.table.classList.add("zf-has-upstream");
    cell(tr, upstream, "zf-upstream");
    const data = tr.insertCell();
    data.className = "zf-data";
    const kind = kindOf(message.data, message.encoding);
    data.dataset.kind = kind;
    if (message.encoding) data.dataset.encoding = message.encoding;
    try {
      data.append(valueView(message.data, message.encoding));
      if (Array.isArray(message.parts) && message.parts.length) {
        data.append(partsView(message.parts, message.encoding));
      }
    } catch (error) {
      // A value this page cannot lay out is still shown, as JSON text.
      data.textContent = JSON.stringify(message.data);
      (window.reportError || console.error)(error);
    }
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
    if (chart) chart.draw();
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
    if (chart) chart.add(message);
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
    const status = statusOf(topic);
    if (status) status.textContent = "";
    if (typeof seq === "number" && !latestSeq.has(topic)) {
      latestSeq.set(topic, seq);
      scheduleDraw();
    }
  });
  function mark(kind, text) {
    notice(text, kind);
    if (!paused) {
      queue.push({ marker: { kind, text } });
      scheduleDraw();
    }
  }

  client.on("gap", (gap) => {
    const count = gap.to_seq - gap.from_seq + 1;
    mark(
      "gap",
      nameOf(gap.topic) + ": " + count + " message" + (count === 1 ? "" : "s") + " missed (seq " +
        gap.from_seq + "–" + gap.to_seq + ", " + gap.reason + ")"
    );
  });
  client.on("reset", ({ topic, lastSeq, renumbered }) => {
    // Not renumbered: messages were lost while away, and the gap marker says which.
    if (!renumbered) return;
    const after = lastSeq === null ? "" : " after seq " + lastSeq;
    mark("reset", nameOf(topic) + ": the numbering started again" + after + " (new epoch); earlier seqs do not carry on");
  });
  client.on("retry", ({ topic, delay }) => {
    // A topic saved a moment ago reaches the server at its next reload: say so, and wait.
    const status = statusOf(topic);
    if (status) {
      status.dataset.kind = "retry";
      status.textContent = "not on the server yet; trying again in " + (delay / 1000).toFixed(1) + " s";
    }
  });
  client.on("error", (error) => {
    const where = error.topic ? nameOf(error.topic) + ": " : "";
    notice(where + error.code + (error.detail ? " – " + error.detail : ""), "error");
    // The subscription was dropped for it (`unsubscribed` came first): say why beside the box.
    const status = error.topic && statusOf(error.topic);
    if (!status || client.isSubscribed(feedSlug, error.topic)) return;
    status.dataset.kind = "error";
    if (error.code === "not_found") {
      const tried = error.retried ? " after " + (client.options.notFoundRetry / 1000).toFixed(0) + " s" : "";
      status.textContent = "unchecked: the server still has no such topic" + tried;
    } else {
      status.textContent = "unchecked: " + error.code + (error.detail ? " (" + error.detail + ")" : "");
    }
  });
  client.on("unsubscribed", ({ topic }) => {
    // The subscription was refused or ended by the server: show the box as it is.
    const box = root.querySelector('input[data-topic="' + CSS.escape(topic) + '"]');
    if (box) box.checked = false;
    const status = statusOf(topic);
    if (status) {
      status.dataset.kind = "error";
      status.textContent = "unchecked: the server ended this subscription";
    }
  });

  for (const box of root.querySelectorAll("input[data-topic]")) {
    const topic = box.dataset.topic;
    if (box.checked) client.subscribe(feedSlug, topic, onMessage);
    box.addEventListener("change", () => {
      const status = statusOf(topic);
      if (status) status.textContent = "";
      if (box.checked) client.subscribe(feedSlug, topic, onMessage);
      else client.unsubscribe(feedSlug, topic, onMessage);
    });
  }

  ui.pause.addEventListener("click", () => {
    paused = !paused;
    ui.pause.textContent = paused ? "Resume" : "Pause";
    ui.pause.setAttribute("aria-pressed", String(paused));
    if (paused) queue = [];
    if (chart) {
      chart.paused = paused;
      if (!paused) chart.draw(true);
    }
  });
  ui.clear.addEventListener("click", () => {
    queue = [];
    ui.rows.textContent = "";
    if (chart) chart.clear();
  });
  if (chart) {
    // Between messages the window still moves on: a repaint when it has moved a pixel.
    setInterval(() => {
      if (chart.order.length && !paused) scheduleDraw();
    }, 100);
  }

  setInterval(() => {
    perSecond.push(thisSecond);
    thisSecond = 0;
    if (perSecond.length > rateWindow) perSecond.shift();
    const rate = perSecond.reduce((a, b) => a + b, 0) / perSecond.length;
    ui.rate.textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
  }, 1000);

  // The publish box (only on pages of topics this user may publish to).

  const form = $("zf-publish");
  if (form) {
    const payload = root.dataset.payload;
    const status = $("zf-pub-status");
    const send = $("zf-pub-send");
    const say = (text, kind) => {
      status.dataset.kind = kind;
      status.textContent = text;
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const topic = $("zf-pub-topic").value;
      const subtopic = $("zf-pub-subtopic").value;
      const text = $("zf-pub-data").value;
      let data = text;
      if (payload === "json") {
        try {
          data = JSON.parse(text);
        } catch (error) {
          say("not JSON: " + error.message, "error"); // nothing is sent
          return;
        }
      }
      send.disabled = true;
      say("sending…", "pending");
      client
        .publish(feedSlug, topic, data, subtopic ? { subtopic } : undefined)
        .then(
          () => say("published", "ok"),
          (error) => say(error.code ? error.code + ": " + (error.detail || "") : error.message, "error")
        )
        .finally(() => {
          send.disabled = false;
        });
    });
  }

  window.zmqfeedLive = client; // for the console and for tests
  window.zmqfeedChart = chart;
})();
