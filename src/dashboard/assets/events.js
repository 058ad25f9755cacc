// roomflow dashboard: the browser's one live connection, shared by all its dashboard pages.
//
// A browser opens at most six connections to one host; with an event stream per page, six open
// pages used them all and the seventh never loaded. This shared worker holds the only
// /api/events stream of the browser while any page has joined, keeps the building as the stream
// tells it, and hands a page that joins the whole building, then every change.
//
// Messages from a page: "join" (send me the building and its changes) and "leave" (stop: the
// page is hidden or left). To a page: {type: "status", state: "live" | "connecting"},
// {type: "building", view} and {type: "rooms", view}, as the stream's events of those names.
"use strict";

const joined = new Set();
let source = null;
let retry = null;
let live = false;
/** The newest whole view: the building's fields, and its rooms by name. */
let building = null;
const rooms = new Map();

function broadcast(message) {
  for (const port of joined) port.postMessage(message);
}

function whole() {
  return { ...building, rooms: [...rooms.values()] };
}

function remember(view, replace) {
  if (replace) rooms.clear();
  for (const room of view.rooms) rooms.set(room.room, room);
  building = { ...view, rooms: [] };
}

function connect() {
  source = new EventSource("/api/events");
  source.addEventListener("open", () => {
    live = true;
    broadcast({ type: "status", state: "live" });
  });
  source.addEventListener("building", (event) => {
    const view = JSON.parse(event.data);
    remember(view, true);
    broadcast({ type: "building", view });
  });
  source.addEventListener("rooms", (event) => {
    const view = JSON.parse(event.data);
    remember(view, false);
    broadcast({ type: "rooms", view });
  });
  source.addEventListener("error", () => {
    live = false;
    broadcast({ type: "status", state: "connecting" });
    // The browser retries by itself after a dropped stream; after a refused or failed request
    // it gives up, so start over.
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      retry = setTimeout(connect, 1000);
    }
  });
}

function disconnect() {
  clearTimeout(retry);
  source?.close();
  source = null;
  live = false;
  building = null;
  rooms.clear();
}

self.onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (message) => {
    if (message.data === "join") {
      joined.add(port);
      if (source === null) {
        connect();
      } else if (live) {
        port.postMessage({ type: "status", state: "live" });
        if (building !== null) port.postMessage({ type: "building", view: whole() });
      }
    } else if (message.data === "leave") {
      joined.delete(port);
      if (joined.size === 0) disconnect();
    }
  };
  port.start();
};
