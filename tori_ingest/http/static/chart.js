// The dashboard's chart, plain SVG in the element's own pixels (its text stays readable on a
// phone): the queue per lane (stacked areas, the highest queue of each slot), pages/s (bars)
// and jobs/min (a line on its own scale, right), and one hover title per slot with its numbers.
"use strict";

const toriChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const H = 200, LEFT = 44, RIGHT = 44;
  const TOP = { y: 14, h: 70 }, BOTTOM = { y: 110, h: 70 };
  const fmt = (n) => Number(n).toLocaleString("en-US");

  function node(tag, attrs = {}, content = "") {
    const element = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
    if (content) element.textContent = content;
    return element;
  }

  function label(x, y, content, cls = "axis", anchor = "start") {
    return node("text", { x, y, class: cls, "text-anchor": anchor }, content);
  }

  function niceMax(value) {
    if (value <= 1) return 1;
    const step = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
    return 10 * step;
  }

  // One closed path per lane, stacked on the lanes before it.
  function areas(t, lanes, x, slot, max) {
    const n = t.buckets.length;
    const y = (v) => TOP.y + TOP.h - (v / max) * TOP.h;
    let below = t.buckets.map(() => 0);
    return lanes.map((lane, li) => {
      const above = below.map((v, i) => v + t.buckets[i].queued[lane]);
      let d = `M${x(0)},${y(above[0])}`;
      above.forEach((v, i) => { d += ` L${x(i) + slot / 2},${y(v)}`; });
      d += ` L${x(n)},${y(above[n - 1])} L${x(n)},${y(below[n - 1])}`;
      for (let i = n - 1; i >= 0; i--) d += ` L${x(i) + slot / 2},${y(below[i])}`;
      d += ` L${x(0)},${y(below[0])} Z`;
      below = above;
      return node("path", { d, class: `area lane-${li}`, "data-lane": lane });
    });
  }

  function throughput(pps, jpm, x, slot, pMax, jMax) {
    const base = BOTTOM.y + BOTTOM.h;
    const bars = pps.map((v, i) => {
      const h = (v / pMax) * BOTTOM.h;
      return node("rect", { x: x(i) + 1, y: base - h, width: Math.max(slot - 2, 1), height: h, class: "bar" });
    });
    let d = "";
    jpm.forEach((v, i) => { d += `${i ? " L" : "M"}${x(i) + slot / 2},${base - (v / jMax) * BOTTOM.h}`; });
    return [...bars, node("path", { d, class: "jobs-line" })];
  }

  function axes(W, t, qMax, pMax, jMax) {
    const right = W - RIGHT, span = (t.buckets.length * t.bucket_s) / 60;
    const line = (y) => node("line", { x1: LEFT, x2: right, y1: y, y2: y, class: "base" });
    return [
      line(TOP.y + TOP.h), line(BOTTOM.y + BOTTOM.h),
      label(LEFT + 2, TOP.y - 3, "queued", "title"),
      label(LEFT - 4, TOP.y + 8, fmt(qMax), "axis", "end"),
      label(LEFT - 4, TOP.y + TOP.h, "0", "axis", "end"),
      label(LEFT + 2, BOTTOM.y - 3, "pages/s", "title"),
      label(LEFT + 58, BOTTOM.y - 3, "jobs/min", "title jobs"),
      label(LEFT - 4, BOTTOM.y + 8, fmt(pMax), "axis", "end"),
      label(LEFT - 4, BOTTOM.y + BOTTOM.h, "0", "axis", "end"),
      label(right + 4, BOTTOM.y + 8, fmt(jMax), "axis jobs"),
      label(LEFT, H - 4, `−${span} min`),
      label((LEFT + right) / 2, H - 4, `−${span / 2} min`, "axis", "middle"),
      label(right, H - 4, "now", "axis", "end"),
    ];
  }

  function hovers(t, depth, pps, jpm, x, slot) {
    const seconds = t.bucket_s < 60 ? "2-digit" : undefined;
    return t.buckets.map((b, i) => {
      const hit = node("rect", { x: x(i), y: TOP.y, width: slot, height: BOTTOM.y + BOTTOM.h - TOP.y, class: "hit" });
      const when = new Date(b.t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: seconds });
      hit.append(node("title", {}, `${when}: up to ${fmt(depth[i])} queued, ${pps[i].toFixed(1)} pages/s, `
        + `${fmt(jpm[i])} jobs/min (${b.failed} failed)`));
      return hit;
    });
  }

  // Draw `t` (the `throughput` of GET /ui/state) into the <svg> `chart`.
  function draw(chart, t, lanes) {
    const W = Math.max(300, Math.round(chart.getBoundingClientRect().width) || 640);
    chart.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const n = t.buckets.length, slot = (W - LEFT - RIGHT) / n, x = (i) => LEFT + i * slot;
    const depth = t.buckets.map((b) => lanes.reduce((sum, lane) => sum + b.queued[lane], 0));
    const pps = t.buckets.map((b) => b.pages / t.bucket_s);
    const jpm = t.buckets.map((b) => ((b.succeeded + b.failed) * 60) / t.bucket_s);
    const qMax = niceMax(Math.max(...depth)), pMax = niceMax(Math.max(...pps)), jMax = niceMax(Math.max(...jpm));
    chart.replaceChildren(
      ...areas(t, lanes, x, slot, qMax),
      ...throughput(pps, jpm, x, slot, pMax, jMax),
      ...axes(W, t, qMax, pMax, jMax),
      ...hovers(t, depth, pps, jpm, x, slot));
    chart.dataset.buckets = String(n);
  }

  return { draw };
})();
