// roomflow dashboard: the building page. One tile per room, patched in place as changes arrive
// on /api/events; sorting, filtering and staleness are worked out here from the same state the
// API returns.
"use strict";

(() => {
  const { number, signed, utc, ago, el, sparkline, live, segment } = roomflow;
  const rooms = new Map(); // room name -> { view, element }
  let building = { newest_time: null, stale_after_ms: 0 };
  let order = [];

  const grid = document.getElementById("rooms");
  const filter = document.getElementById("filter");
  const sort = document.getElementById("sort");
  const staleOnly = document.getElementById("stale-only");

  function isStale(view) {
    return building.newest_time !== null && view.last_heard !== null &&
      building.newest_time - view.last_heard > building.stale_after_ms;
  }

  function temperature(view) {
    const sensor = view.sensors.find((s) => s.sensor === "temperature");
    return sensor && sensor.window ? sensor.window.avg : null;
  }

  function tile(view) {
    const stale = isStale(view);
    const header = el("header", {},
      el("a", { class: "room-name", href: "/rooms/" + segment(view.room) }, view.room));
    if (view.delta) {
      const d = view.delta.delta;
      const direction = d > 0 ? "up" : d < 0 ? "down" : "flat";
      const arrow = d > 0 ? "\u25b2 " : d < 0 ? "\u25bc " : "";
      header.append(el("span", {
        class: "delta " + direction, "data-value": d,
        title: `temperature ${number(view.delta.prev_value)} \u2192 ${number(view.delta.value)} at ${utc(view.delta.ts)}`,
      }, arrow + signed(d)));
    }
    const heard = el("p", { class: "heard" }, "last heard " + utc(view.last_heard));
    if (stale) heard.append(" ", el("span", { class: "badge" }, "stale"));
    const table = el("table", { class: "sensors" },
      el("thead", {}, el("tr", {}, el("th", {}, "sensor"), el("th", {}, "window"),
        el("th", {}, "all time"), el("th", {}, "trend"))));
    const body = el("tbody");
    for (const sensor of view.sensors) {
      const window = sensor.window;
      body.append(el("tr", { "data-sensor": sensor.sensor },
        el("th", {}, sensor.sensor),
        el("td", {
          class: "window-avg", "data-value": window ? window.avg : null,
          title: window ? `window from ${utc(window.window_start)}, ${window.count} readings` : null,
        }, window ? number(window.avg) : "–"),
        el("td", {
          class: "all-time-avg", "data-value": sensor.all_time ? sensor.all_time.avg : null,
          title: sensor.all_time ? `${sensor.all_time.count} readings` : null,
        }, sensor.all_time ? number(sensor.all_time.avg) : "–"),
        el("td", { class: "trend" }, sparkline(sensor.trend))));
    }
    table.append(body);
    const article = el("article", { class: "tile" + (stale ? " stale" : ""), "data-room": view.room },
      header, heard, table);
    if (view.dead_letters || view.late) {
      article.append(el("p", { class: "rejected" },
        `${view.dead_letters} dead letter${view.dead_letters === 1 ? "" : "s"} \u00b7 ${view.late} late`));
    }
    return article;
  }

  function put(view) {
    const known = rooms.get(view.room);
    const element = tile(view);
    if (known) known.element.replaceWith(element);
    rooms.set(view.room, { view, element });
  }

  const comparators = {
    name: (a, b) => a.room < b.room ? -1 : a.room > b.room ? 1 : 0,
    warmest: (a, b) => (temperature(b) ?? -Infinity) - (temperature(a) ?? -Infinity) || comparators.name(a, b),
    coldest: (a, b) => (temperature(a) ?? Infinity) - (temperature(b) ?? Infinity) || comparators.name(a, b),
    stale: (a, b) => (a.last_heard ?? -Infinity) - (b.last_heard ?? -Infinity) || comparators.name(a, b),
    rejected: (a, b) => (b.dead_letters + b.late) - (a.dead_letters + a.late) || comparators.name(a, b),
  };

  /** Shows the tiles that pass the filter, in the chosen order; moves nothing that stays put. */
  function layout() {
    const needle = filter.value.trim().toLowerCase();
    const shown = [...rooms.values()]
      .map((entry) => entry.view)
      .filter((view) => !needle || view.room.toLowerCase().includes(needle))
      .filter((view) => !staleOnly.checked || isStale(view))
      .sort(comparators[sort.value] || comparators.name)
      .map((view) => view.room);
    const same = shown.length === order.length && shown.every((room, i) => room === order[i]) &&
      shown.every((room) => rooms.get(room).element.parentNode === grid);
    if (!same) {
      const fragment = document.createDocumentFragment();
      for (const room of shown) fragment.append(rooms.get(room).element);
      grid.replaceChildren(fragment);
      order = shown;
    }
    document.getElementById("shown").textContent =
      shown.length === rooms.size ? "" : `showing ${shown.length} of ${rooms.size}`;
  }

  function reasons(id, total, items) {
    const details = document.getElementById(id);
    details.querySelector(".total").textContent = total;
    details.querySelector(".reasons").replaceChildren(
      ...items.map((item) => el("li", {}, el("span", { class: "count" }, item.count), " ", item.reason)));
  }

  function counters(view) {
    const c = view.counters;
    document.getElementById("room-count").textContent = c.rooms;
    document.getElementById("change-count").textContent = c.changes;
    document.getElementById("newest-time").textContent = utc(view.newest_time);
    reasons("dead-letters", c.dead_letters.total, c.dead_letters.by_reason);
    reasons("late", c.late.total, c.late.by_reason);
    reasons("malformed", c.malformed_changes,
      c.malformed_recent.map((m) => ({ count: m.source, reason: m.error })));
  }

  function restale() {
    for (const { view, element } of rooms.values()) {
      const stale = isStale(view);
      if (stale !== element.classList.contains("stale")) put(view);
    }
  }

  function onBuilding(view) {
    building = view;
    rooms.clear();
    order = [];
    for (const room of view.rooms) put(room);
    counters(view);
    layout();
  }

  function onRooms(view) {
    const newestMoved = view.newest_time !== building.newest_time;
    building = view;
    for (const room of view.rooms) put(room);
    if (newestMoved) restale();
    counters(view);
    layout();
  }

  filter.addEventListener("input", layout);
  sort.addEventListener("change", layout);
  staleOnly.addEventListener("change", layout);
  // Tiles say how far behind the newest event each room is in their tooltip.
  grid.addEventListener("mouseover", (event) => {
    const article = event.target.closest && event.target.closest("article.tile");
    if (!article || building.newest_time === null) return;
    const entry = rooms.get(article.dataset.room);
    if (entry && entry.view.last_heard !== null) {
      article.title = ago(building.newest_time - entry.view.last_heard);
    }
  });
  live(document.getElementById("status"), onBuilding, onRooms);
})();
