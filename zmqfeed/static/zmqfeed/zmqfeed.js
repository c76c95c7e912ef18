/*
 * zmqfeed.js: a dependency-free client for the zmqfeed WebSocket protocol (docs/client.md).
 *
 *   const feed = new ZmqFeed();                       // ws(s)://<this host>/ws/zmqfeed/
 *   feed.on("state", (state) => console.log(state));  // connecting, open, reconnecting, closed
 *   feed.subscribe("prices", "eur", (msg) => console.log(msg.seq, msg.data));
 *
 * It reconnects with exponential backoff and jitter, resubscribes every topic with `since`
 * set to the last sequence number seen and the `epoch` it belongs to (the server replays
 * what was missed, or says the numbering started again: a `reset`), drops duplicates,
 * unpacks `batch` frames (marking replayed messages), pings so that dead connections
 * are noticed, and retries for a few seconds a subscribe the server does not know yet
 * (`not_found`: a topic saved a moment ago, before the server reloaded its configuration). Where WebSockets cannot open (proxies that block them), it falls back to
 * Server-Sent Events on the server's several-topic SSE endpoint, with the same callbacks.
 * Plain script (global `ZmqFeed`) or CommonJS; no build step.
 */
(function (root, factory) {
  "use strict";
  const ZmqFeed = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = ZmqFeed;
  } else {
    root.ZmqFeed = ZmqFeed;
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const DEFAULTS = {
    minDelay: 500, // ms before the first reconnect attempt (then doubling)
    maxDelay: 10000, // ms, the backoff cap
    pingInterval: 20000, // ms between pings while open
    pongTimeout: 10000, // ms without any frame after a ping before the connection counts as dead
    stableAfter: 5000, // ms a connection must stay open for the backoff to start over
    WebSocket: null, // a WebSocket constructor other than the global one
    transport: "auto", // "auto": WebSocket, SSE if it never opens; "websocket" or "sse" only
    sseUrl: null, // the SSE endpoint; default the WebSocket URL's host with /zmqfeed/sse/
    sseAfter: 2, // WebSocket attempts in a row that fail before ever opening, then SSE
    EventSource: null, // an EventSource constructor other than the global one
    // ms during which a subscribe answered `not_found` is sent again, with backoff: a feed or
    // topic saved a moment ago reaches the server at its next reload. 0: drop it at once.
    notFoundRetry: 8000,
  };
  const RETRY_FIRST = 250; // ms before the first retry of a `not_found` subscribe (then doubling)
  const RETRY_MAX = 2000; // ms, the cap of that backoff
  // Close codes of the per-topic endpoint that retrying cannot fix.
  const FATAL_CLOSE = { 4403: "forbidden", 4404: "not_found" };
  // Errors after which a subscription is dropped instead of being retried on reconnect.
  const DROP_ON_ERROR = new Set(["not_found", "forbidden", "too_many_subscriptions", "bad_request"]);

  function wsScheme() {
    return globalThis.location && globalThis.location.protocol === "https:" ? "wss:" : "ws:";
  }

  function resolveUrl(url) {
    if (!url) url = "/ws/zmqfeed/";
    if (/^wss?:\/\//i.test(url)) return url;
    if (/^https?:\/\//i.test(url)) return url.replace(/^http/i, "ws");
    if (!globalThis.location) throw new Error("ZmqFeed: give an absolute ws:// or wss:// URL");
    return wsScheme() + "//" + globalThis.location.host + (url[0] === "/" ? "" : "/") + url;
  }

  function report(error) {
    if (typeof globalThis.reportError === "function") globalThis.reportError(error);
    else console.error(error);
  }

  const keyOf = (feed, topic) => feed + "/" + topic;

  function resolveSseUrl(url, wsUrl) {
    const base = new URL(wsUrl.replace(/^ws/i, "http"));
    if (!url) return base.origin + "/zmqfeed/sse/";
    return new URL(url, globalThis.location ? globalThis.location.href : base.href).href;
  }

  class ZmqFeed {
    /**
     * @param {string} [url] ws(s):// URL, http(s):// URL or path; default /ws/zmqfeed/ on this host.
     * @param {object} [options] see DEFAULTS.
     */
    constructor(url, options) {
      this.url = resolveUrl(url);
      this.options = Object.assign({}, DEFAULTS, options || {});
      this.state = "connecting";
      this.duplicates = 0; // messages dropped because their seq was already seen
      this._subs = new Map(); // "feed/topic" -> {feed, topic, callbacks, lastSeq, baseline, epoch, …}
      this._listeners = new Map(); // event -> Set of handlers
      this._pending = new Map(); // request id -> {kind, sub, resolve, reject}
      this._nextId = 1;
      this._attempt = 0;
      this._everOpen = false;
      this._openedAt = 0;
      this._ws = null;
      this._reconnectTimer = null;
      this._pingTimer = null;
      this._pongTimer = null;
      this._closed = false;
      this.transport = this.options.transport === "sse" ? "sse" : "websocket";
      this._failedOpens = 0; // WebSocket attempts in a row that never opened
      this._es = null; // the EventSource, over SSE
      this._reopenTimer = null;
      this._connect();
    }

    // Events: state, open, message, subscribed, unsubscribed, gap, reset, retry, error.

    /** Adds a handler; returns a function that removes it. */
    on(event, handler) {
      if (!this._listeners.has(event)) this._listeners.set(event, new Set());
      this._listeners.get(event).add(handler);
      return () => this.off(event, handler);
    }

    off(event, handler) {
      const set = this._listeners.get(event);
      if (set) set.delete(handler);
    }

    /**
     * Subscribes to one topic of one feed; `onMessage(message)` gets each message once, in order.
     * Several handlers may share a topic. Returns a function that removes this handler.
     */
    subscribe(feed, topic, onMessage) {
      const key = keyOf(feed, topic);
      let sub = this._subs.get(key);
      if (!sub) {
        sub = { feed, topic, callbacks: new Set(), lastSeq: null, baseline: null, epoch: null,
          notFoundSince: null, retries: 0, retryTimer: null }; // the last three: _retryLater
        this._subs.set(key, sub);
        if (this.transport === "sse") this._reopenSse();
        else if (this.state === "open") this._sendSubscribe(sub);
      }
      if (onMessage) sub.callbacks.add(onMessage);
      return () => this.unsubscribe(feed, topic, onMessage);
    }

    /** Removes one handler, or all when none is given; the last one gone unsubscribes. */
    unsubscribe(feed, topic, onMessage) {
      const key = keyOf(feed, topic);
      const sub = this._subs.get(key);
      if (!sub) return;
      if (onMessage) sub.callbacks.delete(onMessage);
      if (onMessage && sub.callbacks.size) return;
      this._subs.delete(key);
      clearTimeout(sub.retryTimer);
      if (this.transport === "sse") this._reopenSse();
      else if (this.state === "open") this._request({ type: "unsubscribe", feed, topic }, {});
    }

    /**
     * Publishes to a topic that allows it; resolves with the `published` reply, rejects with
     * an Error whose `code` is the server's (forbidden, not_found, too_large, rate_limited,
     * bad_request, unavailable). `options.subtopic`: text appended to the topic's prefix.
     */
    publish(feed, topic, data, options) {
      if (this.transport === "sse") {
        const error = new Error("ZmqFeed: publish is not available over Server-Sent Events");
        error.code = "not_available";
        return Promise.reject(error);
      }
      if (this.state !== "open") return Promise.reject(new Error("ZmqFeed: not connected"));
      const frame = { type: "publish", feed, topic, data };
      if (options && options.subtopic !== undefined && options.subtopic !== null) {
        frame.subtopic = options.subtopic;
      }
      return new Promise((resolve, reject) => {
        this._request(frame, { resolve, reject });
      });
    }

    /** Whether this client holds a subscription to the topic (errors may drop one). */
    isSubscribed(feed, topic) {
      return this._subs.has(keyOf(feed, topic));
    }

    /** The last sequence number seen on a topic, or null. */
    lastSeq(feed, topic) {
      const sub = this._subs.get(keyOf(feed, topic));
      return sub ? sub.lastSeq : null;
    }

    /** The epoch of a topic's numbering (what its seqs belong to), or null. */
    epoch(feed, topic) {
      const sub = this._subs.get(keyOf(feed, topic));
      return sub ? sub.epoch : null;
    }

    /** Closes the connection for good (no reconnect). */
    close() {
      this._closed = true;
      clearTimeout(this._reconnectTimer);
      const ws = this._ws;
      this._teardown("closed by the client");
      if (ws) ws.close(1000);
      this._closeSse();
      this._setState("closed");
    }

    // Connection.

    _connect() {
      this._reconnectTimer = null;
      this._setState(this._everOpen || this._attempt ? "reconnecting" : "connecting");
      if (this.transport === "sse") {
        this._openSse();
        return;
      }
      const Socket = this.options.WebSocket || globalThis.WebSocket;
      let ws;
      try {
        ws = new Socket(this.url);
      } catch (error) {
        this._emit("error", { code: "connect", detail: String(error) });
        if (!this._fallBack()) this._scheduleReconnect();
        return;
      }
      ws.binaryType = "arraybuffer";
      this._ws = ws;
      ws.onopen = () => this._onOpen();
      ws.onmessage = (event) => this._onFrame(event.data);
      ws.onclose = (event) => {
        if (this._ws === ws) this._onClose(event.code, event.reason);
      };
      ws.onerror = () => {}; // a close event follows with what there is to know
    }

    _onOpen() {
      this._everOpen = true;
      this._openedAt = Date.now();
      this._setState("open");
      this._pingTimer = setInterval(() => this._ping(), this.options.pingInterval);
      for (const sub of this._subs.values()) this._sendSubscribe(sub);
      this._emit("open");
    }

    _onClose(code, reason) {
      const stable = this._openedAt && Date.now() - this._openedAt >= this.options.stableAfter;
      const opened = this._openedAt !== 0;
      this._teardown("connection closed");
      if (this._closed) return;
      if (!opened && this._fallBack()) return;
      if (FATAL_CLOSE[code]) {
        this._closed = true;
        this._emit("error", { code: FATAL_CLOSE[code], detail: reason || "closed " + code });
        this._setState("closed");
        return;
      }
      if (stable) this._attempt = 0;
      this._scheduleReconnect(code);
    }

    _scheduleReconnect(code) {
      const { minDelay, maxDelay } = this.options;
      const ceiling = Math.min(maxDelay, minDelay * Math.pow(2, this._attempt++));
      const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      this._setState("reconnecting", { delay, code });
      this._reconnectTimer = setTimeout(() => this._connect(), delay);
    }

    /** After a WebSocket attempt that never opened: whether it is time for SSE (and it began). */
    _fallBack() {
      this._failedOpens++;
      const give = this.options.transport === "auto" && !this._everOpen;
      if (!give || this._failedOpens < this.options.sseAfter) return false;
      this.transport = "sse";
      this._attempt = 0;
      this._emit("transport", "sse");
      this._connect();
      return true;
    }

    // Server-Sent Events: one EventSource on the several-topic endpoint, re-opened with the
    // new topic list (and the positions so far) on every subscribe and unsubscribe.

    _sseHref() {
      const base = resolveSseUrl(this.options.sseUrl, this.url);
      const query = [];
      const positions = [];
      for (const sub of this._subs.values()) {
        query.push("topic=" + encodeURIComponent(keyOf(sub.feed, sub.topic)));
        const seq = sub.lastSeq !== null ? sub.lastSeq : sub.baseline;
        if (seq !== null && sub.epoch !== null) {
          positions.push(keyOf(sub.feed, sub.topic) + "@" + sub.epoch + ":" + seq);
        }
      }
      if (positions.length) query.push("last_event_id=" + encodeURIComponent(positions.join(",")));
      return base + (base.includes("?") ? "&" : "?") + query.join("&");
    }

    _openSse() {
      this._closeSse();
      if (!this._subs.size) {
        this._setState("open"); // nothing to stream until a subscribe
        return;
      }
      const Source = this.options.EventSource || globalThis.EventSource;
      let es;
      try {
        es = new Source(this._sseHref()); // same origin: the session cookie goes with it
      } catch (error) {
        this._emit("error", { code: "connect", detail: String(error) });
        this._scheduleReconnect();
        return;
      }
      this._es = es;
      es.onopen = () => {
        if (this._es !== es) return;
        this._everOpen = true;
        this._attempt = 0;
        // The first `subscribed` of each topic on this connection answers its subscribe.
        for (const sub of this._subs.values()) sub.sseReply = true;
        this._setState("open");
        this._emit("open");
      };
      es.onmessage = (event) => {
        if (this._es === es) this._onFrame(event.data);
      };
      es.onerror = () => {
        if (this._es !== es) return;
        if (es.readyState === 2) {
          // Refused (an HTTP status: 401, 403, 404, 503) or unreachable: EventSource gave up.
          this._closeSse();
          this._emit("error", { code: "connect", detail: "the event stream could not open" });
          this._scheduleReconnect();
        } else {
          this._setState("reconnecting"); // EventSource reconnects by itself, with Last-Event-ID
        }
      };
    }

    /** A new topic list: one re-open for several changes made together. */
    _reopenSse() {
      if (this._closed || this._reopenTimer !== null || this._reconnectTimer !== null) return;
      this._reopenTimer = setTimeout(() => {
        this._reopenTimer = null;
        if (!this._closed) this._openSse();
      }, 0);
    }

    _closeSse() {
      const es = this._es;
      this._es = null;
      if (es) {
        es.onopen = es.onmessage = es.onerror = null;
        es.close();
      }
    }

    /** Forgets the current socket, its timers and its outstanding requests. */
    _teardown(why) {
      const ws = this._ws;
      this._ws = null;
      this._openedAt = 0;
      clearInterval(this._pingTimer);
      clearTimeout(this._pongTimer);
      this._pingTimer = this._pongTimer = null;
      if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
      for (const sub of this._subs.values()) {
        clearTimeout(sub.retryTimer); // the next connection subscribes every topic anyway
        sub.retryTimer = null;
      }
      for (const pending of this._pending.values()) {
        if (pending.reject) pending.reject(new Error("ZmqFeed: " + why));
      }
      this._pending.clear();
    }

    _ping() {
      this._request({ type: "ping" }, {});
      if (this._pongTimer === null) {
        this._pongTimer = setTimeout(() => {
          // No frame at all since the ping: the connection is dead even if TCP has not noticed.
          const ws = this._ws;
          this._onClose(4000, "no pong");
          if (ws) ws.close(4000, "no pong");
        }, this.options.pongTimeout);
      }
    }

    /** Emits "state" on each change, and again with each new delay while reconnecting. */
    _setState(state, detail) {
      if (state === this.state && !detail) return;
      this.state = state;
      this._emit("state", state, detail || {});
    }

    _emit(event, ...args) {
      const set = this._listeners.get(event);
      if (!set) return;
      for (const handler of Array.from(set)) {
        try {
          handler(...args);
        } catch (error) {
          report(error);
        }
      }
    }

    _request(frame, meta) {
      const id = "z" + this._nextId++;
      this._pending.set(id, Object.assign({ kind: frame.type }, meta));
      this._ws.send(JSON.stringify(Object.assign({ id }, frame)));
      return id;
    }

    _sendSubscribe(sub) {
      const frame = { type: "subscribe", feed: sub.feed, topic: sub.topic };
      const since = sub.lastSeq !== null ? sub.lastSeq : sub.baseline;
      if (since !== null) {
        frame.since = since;
        if (sub.epoch !== null) frame.epoch = sub.epoch;
      }
      this._request(frame, { sub });
    }

    // Frames from the server.

    _onFrame(data) {
      clearTimeout(this._pongTimer);
      this._pongTimer = null;
      if (typeof data !== "string") data = new TextDecoder().decode(data);
      let frame;
      try {
        frame = JSON.parse(data);
      } catch (error) {
        this._emit("error", { code: "bad_frame", detail: "server sent invalid JSON" });
        return;
      }
      let pending = frame.id !== undefined ? this._pending.get(frame.id) : undefined;
      if (pending) this._pending.delete(frame.id);
      if (!pending && this.transport === "sse" && frame.type === "subscribed") {
        const sub = this._subs.get(keyOf(frame.feed, frame.topic));
        if (sub && sub.sseReply) {
          sub.sseReply = false;
          pending = { kind: "subscribe", sub }; // the stream's answer to its topic list
        }
      }
      switch (frame.type) {
        case "message":
          this._deliver(frame);
          break;
        case "batch":
          for (const message of frame.messages || []) {
            if (frame.replayed) message.replayed = true; // from the history, not live
            this._deliver(message);
          }
          break;
        case "subscribed":
          this._onSubscribed(frame, pending);
          break;
        case "gap":
          this._onGap(frame);
          break;
        case "error":
          this._onError(frame, pending);
          break;
        case "unsubscribed":
          // Without a request of ours: the server ended the subscription (access changed).
          if (!pending) this._drop(frame.feed, frame.topic);
          break;
        default: // pong, published
          if (pending && pending.resolve) pending.resolve(frame);
      }
    }

    _drop(feed, topic) {
      const sub = this._subs.get(keyOf(feed, topic));
      if (!sub) return;
      this._subs.delete(keyOf(feed, topic));
      clearTimeout(sub.retryTimer);
      this._emit("unsubscribed", { feed, topic });
      if (this.transport === "sse") this._reopenSse(); // a stream that names it would be refused
    }

    _onSubscribed(frame, pending) {
      const sub = pending ? pending.sub : this._subs.get(keyOf(frame.feed, frame.topic));
      if (!sub || this._subs.get(keyOf(sub.feed, sub.topic)) !== sub) return;
      sub.notFoundSince = null;
      sub.retries = 0;
      const seq = frame.seq;
      const epoch = typeof frame.epoch === "string" ? frame.epoch : null;
      const previous = sub.epoch;
      const renumbered =
        (previous !== null && epoch !== null && epoch !== previous) ||
        (epoch === null && sub.lastSeq !== null && typeof seq === "number" && seq < sub.lastSeq);
      if (epoch !== null) sub.epoch = epoch;
      const recovered = typeof frame.recovered === "boolean" ? frame.recovered : null;
      const lastSeq = sub.lastSeq;
      if (typeof seq === "number") {
        if (renumbered) {
          // The numbering started again (a restarted gateway, a wiped Redis): the old seqs
          // mean nothing now. A reply to our subscribe replays all that is kept of the new
          // numbering (from 0); a `subscribed` of the server's own goes on from `seq`.
          sub.lastSeq = pending && epoch !== null ? 0 : seq;
          sub.baseline = null;
        } else if (sub.lastSeq === null) {
          sub.baseline = seq;
        }
      }
      if (renumbered || recovered === false) {
        // Continuity is broken: a new numbering, or messages lost on the way back (the
        // `gap` that follows says which). An application that keeps state re-reads it.
        this._emit("reset", {
          feed: sub.feed,
          topic: sub.topic,
          seq,
          lastSeq,
          epoch,
          previousEpoch: previous,
          renumbered,
        });
      }
      this._emit("subscribed", { feed: sub.feed, topic: sub.topic, seq, epoch, recovered });
    }

    _deliver(message) {
      const sub = this._subs.get(keyOf(message.feed, message.topic));
      if (!sub) return; // unsubscribed while the message was on its way
      const seq = message.seq;
      if (typeof seq === "number") {
        if (sub.lastSeq !== null) {
          if (seq <= sub.lastSeq) {
            this.duplicates++;
            return;
          }
          if (seq > sub.lastSeq + 1) {
            this._emit("gap", {
              feed: sub.feed,
              topic: sub.topic,
              from_seq: sub.lastSeq + 1,
              to_seq: seq - 1,
              reason: "missed",
            });
          }
        }
        sub.lastSeq = seq;
      }
      this._emit("message", message);
      for (const callback of Array.from(sub.callbacks)) {
        try {
          callback(message);
        } catch (error) {
          report(error);
        }
      }
    }

    /**
     * A subscribe answered `not_found`: sent again after a backoff while `notFoundRetry` ms
     * have not passed since the first refusal (emitting `retry`); false when it is time to
     * give up. Only replies to a subscribe come here, never a subscription the server ended.
     */
    _retryLater(sub, error) {
      if (this._subs.get(keyOf(sub.feed, sub.topic)) !== sub || this.transport !== "websocket") {
        return false;
      }
      const now = Date.now();
      if (sub.notFoundSince === null) sub.notFoundSince = now;
      const retries = sub.retries;
      const delay = Math.min(RETRY_MAX, RETRY_FIRST * Math.pow(2, retries));
      if (now + delay - sub.notFoundSince > this.options.notFoundRetry) {
        error.retried = retries; // how many times it was sent again before this refusal
        return false;
      }
      sub.retries = retries + 1;
      clearTimeout(sub.retryTimer);
      sub.retryTimer = setTimeout(() => {
        sub.retryTimer = null;
        if (this._subs.get(keyOf(sub.feed, sub.topic)) === sub && this.state === "open" && this._ws) {
          this._sendSubscribe(sub);
        }
      }, delay);
      this._emit("retry", Object.assign({ delay, attempt: sub.retries }, error));
      return true;
    }

    _onGap(frame) {
      const sub = this._subs.get(keyOf(frame.feed, frame.topic));
      if (sub && typeof frame.to_seq === "number") {
        if (sub.lastSeq === null || frame.to_seq > sub.lastSeq) sub.lastSeq = frame.to_seq;
      }
      this._emit("gap", frame);
    }

    _onError(frame, pending) {
      const error = { code: frame.code, detail: frame.detail };
      if (frame.id !== undefined) error.id = frame.id;
      if (frame.feed !== undefined) error.feed = frame.feed;
      if (frame.topic !== undefined) error.topic = frame.topic;
      const sub = pending && pending.sub;
      if (sub) {
        error.feed = sub.feed;
        error.topic = sub.topic;
      }
      if (sub && frame.code === "not_found" && this._retryLater(sub, error)) return;
      if (sub && DROP_ON_ERROR.has(frame.code) && this._subs.get(keyOf(sub.feed, sub.topic)) === sub) {
        this._drop(sub.feed, sub.topic);
      }
      if (pending && pending.reject) {
        pending.reject(Object.assign(new Error(frame.code + ": " + frame.detail), error));
      }
      this._emit("error", error);
    }
  }

  ZmqFeed.DEFAULTS = DEFAULTS;
  return ZmqFeed;
});
