// roomflow dashboard: what both pages share: formatting, element building, room names in paths,
// and the live connection: /api/events (server-sent events) through the browser's one shared
// worker (events.js), which reconnects by itself.
"use strict";

const roomflow = (() => {
  /** A number as shown: two decimals (the exact value is in the element's data-value). */
  function number(value) {
    return value === null || value === undefined ? "–" : value.toFixed(2);
  }

  /** A signed number: "+0.12", "−0.05", "±0.00". */
  function signed(value) {
    if (value > 0) return "+" + value.toFixed(2);
    if (value < 0) return "\u2212" + (-value).toFixed(2);
    return "\u00b10.00";
  }

  /**
   * Epoch milliseconds as a UTC date and time; a time no Date can hold (beyond 8.64e15 ms either
   * side of 1970, as a dead letter may claim) as its number: shown, never thrown.
   */
  function utc(ms) {
    if (ms === null || ms === undefined) return "–";
    const date = new Date(ms);
    if (Number.isNaN(date.getTime())) return String(ms);
    return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  /**
   * A name as one path segment. Percent-encoding is not enough for "." and "..": a browser
   * resolves them (and %2E forms) as "this" and "the parent" directory, so /rooms/.. became /.
   * Such a name, and any of "~"s followed by one or two dots, gets one "~" in front; the server
   * (views::name_from_segment) and nameFromSegment take it off again.
   */
  function segment(name) {
    return encodeURIComponent(/^~*\.{1,2}$/.test(name) ? "~" + name : name);
  }

  /** The name a (decoded) path segment made by `segment` stands for. */
  function nameFromSegment(text) {
    return /^~+\.{1,2}$/.test(text) ? text.slice(1) : text;
  }

  /** A duration in milliseconds, in the largest unit that fits. */
  function ago(ms) {
    if (ms < 1000) return "now";
    const units = [[86400000, "d"], [3600000, "h"], [60000, "min"], [1000, "s"]];
    for (const [size, unit] of units) {
      if (ms >= size) return Math.floor(ms / size) + " " + unit + " before the newest";
    }
    return "now";
  }

  /** An element with attributes and children (strings become text: never HTML). */
  function el(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") element.className = value;
      else element.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      element.append(child instanceof Node ? child : String(child));
    }
    return element;
  }

  const SVG = "http://www.w3.org/2000/svg";

  /** A sparkline of `values` (oldest first), as an inline SVG polyline. */
  function sparkline(values, width = 84, height = 22) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("class", "sparkline");
    if (values.length === 0) return svg;
    const low = Math.min(...values), high = Math.max(...values);
    const span = high - low || 1;
    const step = values.length > 1 ? (width - 4) / (values.length - 1) : 0;
    const points = values.map((value, i) =>
      `${(2 + i * step).toFixed(1)},${(height - 2 - ((value - low) / span) * (height - 4)).toFixed(1)}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
    return svg;
  }

  /**
   * Follows /api/events: `onBuilding(view)` with the whole building (at start, after every
   * reconnect, and when the page is shown again), `onRooms(view)` with the rooms changed since.
   * Shows the connection in `status`.
   *
   * A browser opens at most six connections to a host, and a stream per page used them all with
   * six pages open (the back/forward cache keeps left pages too): the seventh never loaded. So
   * the stream is held once per browser, by a shared worker (events.js) that hands each page the
   * building and its changes. A page leaves it while hidden or left (pagehide) and joins again
   * when shown. Without shared workers, a page holds its own stream, only while shown.
   */
  function live(status, onBuilding, onRooms) {
    const show = (text, state) => {
      status.textContent = text;
      status.className = "status " + state;
    };
    const handle = (message) => {
      if (message.type === "status") {
        if (message.state === "live") show("live", "live");
        else show("reconnecting…", "connecting");
      } else if (message.type === "building") onBuilding(message.view);
      else if (message.type === "rooms") onRooms(message.view);
    };
    let feed;
    try {
      feed = typeof SharedWorker === "function" ? sharedFeed(handle) : ownFeed(handle);
    } catch {
      // A context that may not start workers (a sandboxed frame, say): a stream of its own.
      feed = ownFeed(handle);
    }
    let joined = false;
    const join = () => {
      if (joined || document.hidden) return;
      joined = true;
      show("connecting…", "connecting");
      feed.join();
    };
    const leave = () => {
      if (!joined) return;
      joined = false;
      feed.leave();
      show("paused", "connecting");
    };
    document.addEventListener("visibilitychange", () => (document.hidden ? leave() : join()));
    window.addEventListener("pagehide", leave);
    window.addEventListener("pageshow", join);
    join();
  }

  /** The browser's one stream, through the shared worker events.js. */
  function sharedFeed(handle) {
    const worker = new SharedWorker("/assets/events.js", { name: "roomflow-events" });
    worker.port.onmessage = (event) => handle(event.data);
    worker.port.start();
    return {
      join: () => worker.port.postMessage("join"),
      leave: () => worker.port.postMessage("leave"),
    };
  }

  /** A stream of this page's own (no shared workers here), held only while joined. */
  function ownFeed(handle) {
    let source = null;
    let retry = null;
    const connect = () => {
      source = new EventSource("/api/events");
      source.addEventListener("open", () => handle({ type: "status", state: "live" }));
      for (const type of ["building", "rooms"]) {
        source.addEventListener(type, (event) => handle({ type, view: JSON.parse(event.data) }));
      }
      source.addEventListener("error", () => {
        handle({ type: "status", state: "connecting" });
        // The browser retries by itself after a dropped stream; after a refused or failed
        // request it gives up, so start over.
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          retry = setTimeout(connect, 1000);
        }
      });
    };
    return {
      join: connect,
      leave: () => {
        clearTimeout(retry);
        source?.close();
        source = null;
      },
    };
  }

  return { number, signed, utc, ago, el, sparkline, live, segment, nameFromSegment };
})();
