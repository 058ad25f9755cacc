// roomflow dashboard: what both pages share: formatting, element building, and the live
// connection to /api/events (server-sent events), which reconnects by itself.
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

  /** Epoch milliseconds as a UTC date and time. */
  function utc(ms) {
    if (ms === null || ms === undefined) return "–";
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
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
   * Follows /api/events: `onBuilding(view)` with the whole building (at start and after every
   * reconnect), `onRooms(view)` with the rooms changed since. Shows the connection in `status`.
   */
  function live(status, onBuilding, onRooms) {
    let source = null;
    const show = (text, state) => {
      status.textContent = text;
      status.className = "status " + state;
    };
    const connect = () => {
      source = new EventSource("/api/events");
      source.addEventListener("open", () => show("live", "live"));
      source.addEventListener("building", (event) => onBuilding(JSON.parse(event.data)));
      source.addEventListener("rooms", (event) => onRooms(JSON.parse(event.data)));
      source.addEventListener("error", () => {
        show("reconnecting…", "connecting");
        // The browser retries by itself after a dropped stream; after a refused or failed
        // request it gives up, so start over.
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          setTimeout(connect, 1000);
        }
      });
    };
    connect();
  }

  return { number, signed, utc, ago, el, sparkline, live };
})();
