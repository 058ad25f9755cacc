// roomflow dashboard: one room's page. Every sensor's retained windows as a chart (SVG drawn by
// the server), the temperature deltas, and the room's late and rejected inputs; fetched again
// whenever /api/events says the room changed.
"use strict";

(() => {
  const { number, signed, utc, el, live, segment, nameFromSegment } = roomflow;
  const name = nameFromSegment(decodeURIComponent(location.pathname.slice("/rooms/".length)));
  const api = "/api/rooms/" + segment(name);
  document.getElementById("room-name").textContent = name;
  document.title = "roomflow · room " + name;

  let fetching = false;
  let again = false;

  /** Puts the server's SVG chart into `container` (its own markup, no data of ours in it). */
  async function chart(container, url) {
    const response = await fetch(url);
    if (response.ok) container.innerHTML = await response.text();
  }

  function sensorPanel(sensor) {
    const latest = sensor.windows[sensor.windows.length - 1];
    const chartBox = el("div", { class: "chart", "data-windows": sensor.windows.length });
    const panel = el("section", { class: "panel sensor", "data-sensor": sensor.sensor },
      el("h2", {}, sensor.sensor),
      el("p", { class: "facts" },
        "all time ",
        el("strong", { class: "all-time-avg", "data-value": sensor.all_time ? sensor.all_time.avg : null },
          sensor.all_time ? number(sensor.all_time.avg) : "–"),
        sensor.all_time ? ` (${sensor.all_time.count} readings) \u00b7 ` : " \u00b7 ",
        "newest window ",
        el("strong", { class: "window-avg", "data-value": latest ? latest.avg : null },
          latest ? number(latest.avg) : "–"),
        latest ? ` (from ${utc(latest.window_start)}, ${latest.count} readings) \u00b7 ` : " \u00b7 ",
        `${sensor.windows.length} windows charted`),
      chartBox);
    chart(chartBox, `${api}/sensors/${segment(sensor.sensor)}/chart`);
    return panel;
  }

  function show(view) {
    document.getElementById("missing").hidden = true;
    document.getElementById("last-heard").textContent = utc(view.last_heard) + (view.stale ? " (stale)" : "");
    document.getElementById("room-dead-letters").textContent = view.dead_letters;
    document.getElementById("room-late").textContent = view.late;
    document.getElementById("sensors").replaceChildren(...view.sensors.map(sensorPanel));

    const deltas = document.getElementById("deltas");
    deltas.hidden = view.deltas.length === 0;
    if (view.deltas.length > 0) chart(document.getElementById("delta-chart"), `${api}/deltas/chart`);
    deltas.querySelector("tbody").replaceChildren(...view.deltas.slice(-10).reverse().map((d) =>
      el("tr", {},
        el("td", {}, utc(d.ts)),
        el("td", {}, number(d.prev_value)),
        el("td", {}, number(d.value)),
        el("td", { class: "delta " + (d.delta > 0 ? "up" : d.delta < 0 ? "down" : "flat"), "data-value": d.delta },
          signed(d.delta)))));

    const rejected = document.getElementById("rejected");
    rejected.hidden = view.rejected.length === 0;
    rejected.querySelector("tbody").replaceChildren(...view.rejected.map((r) =>
      el("tr", {},
        el("td", {}, r.kind === "late" ? "late" : "dead letter"),
        el("td", { class: "source" }, r.source),
        el("td", {}, r.reason),
        el("td", { class: "source" }, r.ts !== null
          ? `${r.sensor ?? "?"} = ${r.value ?? "?"} at ${utc(r.ts)}`
          : (r.line ?? "")))));
  }

  /** Fetches the room; one fetch at a time, and one more if it changed meanwhile. */
  async function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const response = await fetch(api);
      if (response.ok) show(await response.json());
      else document.getElementById("missing").hidden = false;
    } finally {
      fetching = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  live(document.getElementById("status"), refresh, (view) => {
    if (view.rooms.some((room) => room.room === name)) refresh();
  });
})();
