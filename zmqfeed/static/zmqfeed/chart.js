/*
 * The live page's chart (live.js): one numeric field of the messages over the last
 * minutes, a line per ZeroMQ topic, drawn with the vendored uPlot (vendor/uplot/).
 *
 * add(message) is cheap (a number pushed on a bounded buffer per series); draw() builds
 * uPlot's data and repaints, and live.js calls it at most once per animation frame, so a
 * fast feed costs one repaint a frame, not one a message. x is the time the gateway
 * received the message (`ts`), so replayed messages sit where they belong.
 */
(function (root) {
  "use strict";

  const MAX_SERIES = 8; // lines drawn; further ZeroMQ topics are counted, not drawn
  const MAX_POINTS = 10000; // per series (15 minutes at 11 msg/s); the oldest go first
  const KEEP = 900; // seconds of points kept: the longest window
  const MAX_FIELDS = 40; // numeric fields offered in the select
  const WALK_NODES = 200; // members of a message visited looking for numeric fields
  const MAX_DEPTH = 4; // and how deep
  // Distinct on light and dark backgrounds (Okabe–Ito, then two more).
  const COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#8e6c8a", "#7f7f7f"];
  const VALUE_LABEL = "(value)"; // the field of a message whose data is a number

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  /** Calls found(path) for each numeric member of `data` (objects only; arrays are skipped). */
  function numericPaths(data, found) {
    if (isNumber(data)) {
      found([]);
      return;
    }
    let budget = WALK_NODES;
    const walk = (value, path) => {
      for (const key in value) {
        if (--budget < 0) return;
        if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
        const member = value[key];
        if (isNumber(member)) found(path.concat(key));
        else if (isObject(member) && path.length + 1 < MAX_DEPTH) walk(member, path.concat(key));
      }
    };
    if (isObject(data)) walk(data, []);
  }

  function valueAt(data, path) {
    let value = data;
    for (const key of path) {
      if (!isObject(value) || !Object.prototype.hasOwnProperty.call(value, key)) return undefined;
      value = value[key];
    }
    return isNumber(value) ? value : undefined;
  }

  function labelOf(path) {
    return path.length ? path.join(".") : VALUE_LABEL;
  }

  // First index of sorted xs[from, to) whose value is >= x (or > x when `after`).
  function search(xs, x, from, to, after) {
    let lo = from;
    let hi = to;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (after ? xs[mid] <= x : xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A series' points in time order, at most MAX_POINTS (a ring in two arrays). */
  class Points {
    constructor() {
      this.xs = [];
      this.ys = [];
      this.start = 0; // points before it are gone
    }

    get length() {
      return this.xs.length - this.start;
    }

    push(x, y) {
      const { xs, ys } = this;
      const n = xs.length;
      if (n > this.start && x <= xs[n - 1]) {
        if (x === xs[n - 1] && y === ys[n - 1]) return false; // one message, two topics
        const at = search(xs, x, this.start, n, true); // late (a replay): into its place
        xs.splice(at, 0, x);
        ys.splice(at, 0, y);
      } else {
        xs.push(x);
        ys.push(y);
      }
      if (this.length > MAX_POINTS) this.start++;
      this._compact();
      return true;
    }

    /** Forgets points before x. */
    trim(x) {
      this.start = search(this.xs, x, this.start, this.xs.length, false);
      this._compact();
    }

    _compact() {
      if (this.start < 1024 || this.start < this.xs.length / 2) return;
      this.xs = this.xs.slice(this.start);
      this.ys = this.ys.slice(this.start);
      this.start = 0;
    }
  }

  function clock(seconds) {
    const d = new Date(seconds * 1000);
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      "." + pad(d.getMilliseconds(), 3);
  }

  function timeLabel(seconds) {
    return seconds === null || seconds === undefined ? "–" : clock(seconds);
  }

  // The x axis: local times, to the second when ticks are less than a minute apart.
  function ticks(u, splits, axisIdx, space, increment) {
    const pad = (n) => String(n).padStart(2, "0");
    return splits.map((s) => {
      const d = new Date(s * 1000);
      const minutes = pad(d.getHours()) + ":" + pad(d.getMinutes());
      return increment < 60 ? minutes + ":" + pad(d.getSeconds()) : minutes;
    });
  }

  function number(value) {
    if (value === null || value === undefined) return "–";
    const abs = Math.abs(value);
    if (abs !== 0 && (abs >= 1e9 || abs < 1e-4)) return value.toExponential(4);
    return String(Math.round(value * 1e6) / 1e6);
  }

  /*
   * What a series' legend shows: its value at the row under the cursor or, as each row holds
   * one series' value, its last one before; with no cursor on the chart, its latest value.
   */
  function latest(column, row, value) {
    if (value !== null && value !== undefined) return value;
    if (!column) return null;
    const last = row === null || row === undefined ? column.length - 1 : row;
    for (let i = last; i >= 0 && i > last - 2000; i--) {
      if (column[i] !== null) return column[i];
    }
    return null;
  }

  // Room for the longest tick label of the y axis (uPlot's default is a fixed 50 px).
  function axisSize(u, values, axisIdx, cycleNum) {
    const axis = u.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    let size = axis.ticks.size + axis.gap;
    const longest = (values || []).reduce((a, v) => (v.length > a.length ? v : a), "");
    if (longest) {
      u.ctx.font = axis.font[0];
      size += u.ctx.measureText(longest).width / (root.devicePixelRatio || 1);
    }
    return Math.ceil(size);
  }

  /**
   * ui: {card, plot, field, window, note} elements of the page (feed_detail.html).
   * options.nameOf(topicSlug): the topic's name, for messages without a ZeroMQ topic.
   * options.storageKey: where the chosen field is remembered (localStorage), or none.
   */
  class LiveChart {
    constructor(ui, options) {
      this.ui = ui;
      this.nameOf = (options && options.nameOf) || ((slug) => slug);
      this.storageKey = options && options.storageKey;
      this.fields = new Map(); // label -> path, in the order first seen
      this.field = null; // the label charted
      this.chosen = false; // picked in the select, not by default
      this.series = new Map(); // key -> {label, color, points}
      this.order = []; // the series drawn, in the order they appeared
      this.undrawn = new Set(); // keys of series beyond MAX_SERIES
      this.windowSeconds = parseInt(ui.window.value, 10) || 300;
      this.offset = null; // seconds, gateway clock minus this browser's
      this.plot = null;
      this.dirty = false;
      this.drawnAt = 0;
      this.paused = false;
      this.width = 0;
      this.preferred = null;
      try {
        this.preferred = this.storageKey ? root.localStorage.getItem(this.storageKey) : null;
      } catch (error) {
        // storage refused (privacy settings): no memory of the choice
      }
      ui.field.addEventListener("change", () => {
        this.chosen = true;
        this._remember(ui.field.value);
        this.setField(ui.field.value);
      });
      ui.window.addEventListener("change", () => {
        this.windowSeconds = parseInt(ui.window.value, 10) || 300;
        this.dirty = true;
      });
      if (typeof ResizeObserver !== "undefined") {
        new ResizeObserver(() => this._fit()).observe(ui.plot);
      }
    }

    /** Takes a message's number, if it has one in the field charted; true if it did. */
    add(message) {
      const data = message.data;
      if (message.encoding || (typeof data !== "number" && !isObject(data))) return false;
      numericPaths(data, (path) => this._offer(path));
      if (this.field === null) return false;
      const value = valueAt(data, this.fields.get(this.field));
      if (value === undefined) return false;
      const now = Date.now() / 1000;
      let x = now + (this.offset || 0);
      if (isNumber(message.ts)) {
        x = message.ts;
        if (!message.replayed) {
          const sample = message.ts - now; // the clocks' difference, less the latency
          this.offset = this.offset === null ? sample : this.offset + (sample - this.offset) * 0.1;
        }
      }
      const zmqTopic = typeof message.zmq_topic === "string" ? message.zmq_topic : "";
      const key = zmqTopic || "\u0000" + message.topic;
      let series = this.series.get(key);
      if (!series) {
        if (this.order.length >= MAX_SERIES) {
          if (!this.undrawn.has(key)) {
            this.undrawn.add(key);
            this._note();
          }
          return false;
        }
        series = {
          label: zmqTopic || this.nameOf(message.topic),
          color: COLORS[this.order.length % COLORS.length],
          points: new Points(),
        };
        this.series.set(key, series);
        this.order.push(series);
        this._destroy(); // uPlot is built again with the new series
        this._note();
      }
      if (series.points.push(x, value)) this.dirty = true;
      return this.dirty;
    }

    /** Charts another field: from nothing, since only the field charted is kept. */
    setField(label) {
      if (!this.fields.has(label)) return;
      this.field = label;
      this.ui.field.value = label;
      this.clear();
    }

    /** Forgets every point (the Clear button, a new field). */
    clear() {
      this.series.clear();
      this.order = [];
      this.undrawn.clear();
      this._destroy();
      this.ui.plot.textContent = "";
      this._note();
    }

    /** Repaints when something changed, or when the window has moved by a pixel. */
    draw(force) {
      // Paused: frozen, unless a new series made uPlot go (it is built again at once).
      if (!this.order.length || (this.paused && this.plot)) return;
      const now = Date.now() / 1000 + (this.offset || 0);
      const pixel = this.windowSeconds / Math.max(1, this.ui.plot.clientWidth);
      if (!force && !this.dirty && this.plot && now - this.drawnAt < pixel) return;
      this.dirty = false;
      this.drawnAt = now;
      // Until the window is full, it starts at the first point (10 s at least): a chart
      // that was just opened is not a stub at its right edge.
      let oldest = now;
      for (const s of this.order) {
        const p = s.points;
        if (p.length) oldest = Math.min(oldest, p.xs[p.start]);
      }
      const from = Math.max(now - this.windowSeconds, Math.min(oldest, now - 10));
      this.range = [from, now];
      // Merge the series' points into uPlot's one x array; each row has one series' value.
      const heads = this.order.map((s) => {
        s.points.trim(now - KEEP);
        const p = s.points;
        return { p, i: search(p.xs, from, p.start, p.xs.length, false), end: p.xs.length };
      });
      const xs = [];
      const columns = this.order.map(() => []);
      for (;;) {
        let pick = -1;
        let best = Infinity;
        for (let j = 0; j < heads.length; j++) {
          const h = heads[j];
          if (h.i < h.end && h.p.xs[h.i] < best) {
            best = h.p.xs[h.i];
            pick = j;
          }
        }
        if (pick < 0) break;
        const h = heads[pick];
        xs.push(best);
        for (let j = 0; j < columns.length; j++) columns[j].push(j === pick ? h.p.ys[h.i] : null);
        h.i++;
      }
      const data = [xs, ...columns];
      if (this.plot) this.plot.setData(data);
      else this._create(data);
    }

    _offer(path) {
      if (this.fields.size >= MAX_FIELDS) return;
      const label = labelOf(path);
      if (this.fields.has(label)) return;
      this.fields.set(label, path);
      const option = document.createElement("option");
      option.value = option.textContent = label;
      this.ui.field.append(option);
      this.ui.card.hidden = false;
      if (this.field === null || (!this.chosen && label === this.preferred && this.field !== label)) {
        this.setField(label);
      } else {
        this.ui.field.value = this.field;
      }
    }

    _remember(label) {
      try {
        if (this.storageKey) root.localStorage.setItem(this.storageKey, label);
      } catch (error) {
        // storage refused: nothing remembered
      }
    }

    _note() {
      const drawn = this.order.length;
      let text = drawn ? "" : "waiting for " + (this.field === null ? "a number" : this.field) + "…";
      if (this.undrawn.size) {
        text = drawn + " of " + (drawn + this.undrawn.size) + " ZeroMQ topics drawn";
      }
      this.ui.note.textContent = text;
    }

    _height() {
      return this.ui.plot.clientWidth < 500 ? 200 : 240;
    }

    _create(data) {
      const css = getComputedStyle(this.ui.plot);
      const muted = css.getPropertyValue("--zf-muted").trim() || "#6b6f76";
      const line = css.getPropertyValue("--zf-line").trim() || "#e2e2de";
      const axis = {
        stroke: muted,
        grid: { stroke: line, width: 1 },
        ticks: { stroke: line, width: 1 },
        font: "12px system-ui, sans-serif",
      };
      this.width = this.ui.plot.clientWidth;
      this.ui.plot.textContent = "";
      this.plot = new root.uPlot(
        {
          width: this.width,
          height: this._height(),
          cursor: { drag: { x: false, y: false, setScale: false } }, // live: no zoom
          legend: { live: true },
          scales: { x: { time: true, range: () => this.range } },
          series: [
            { label: "time", value: (u, v, i, row) => timeLabel(latest(u.data[0], row, v)) },
            ...this.order.map((s) => ({
              label: s.label,
              stroke: s.color,
              width: 1.5,
              spanGaps: true, // each row holds one series' value: join across the others'
              points: { show: false },
              value: (u, v, i, row) => number(latest(u.data[i], row, v)),
            })),
          ],
          axes: [
            Object.assign({}, axis, { space: 70, values: ticks }),
            Object.assign({}, axis, { size: axisSize }),
          ],
        },
        data,
        this.ui.plot
      );
    }

    _destroy() {
      if (this.plot) this.plot.destroy();
      this.plot = null;
    }

    _fit() {
      const width = this.ui.plot.clientWidth;
      if (!this.plot || width === this.width) return;
      this.width = width;
      this.plot.setSize({ width, height: this._height() });
    }
  }

  LiveChart.MAX_SERIES = MAX_SERIES;
  LiveChart.MAX_POINTS = MAX_POINTS;
  root.ZmqFeedChart = LiveChart;
})(typeof self !== "undefined" ? self : this);
