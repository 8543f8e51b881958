// swarmnet web inspector: the live actor tree, the followed actor's statechart
// (laid out by elkjs from the machine's own definition) with its current state
// lit, and its recent transitions; pause and step back through them.
/* global ELK, EventSource */

const elk = new ELK();
const HISTORY = 2000;
const SHOWN_TRANSITIONS = 60;

const view = {
  machines: {},
  actors: [],
  sources: [],
  history: [],
  followed: null,
  chosen: false,
  paused: false,
  buffered: [],
  cursor: null,
  lastN: 0,
  layouts: new Map(),
  drawn: null,
};
// For tests and the curious: every state each actor was seen in, in order.
const seen = new Map();
window.inspector = { view, seen: (id) => seen.get(id) ?? [] };

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
};
const svg = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};
const time = (at) => new Date(at).toISOString().slice(11, 23);
const size = (b) => (b < 1024 ? `${Math.round(b)} B` : b < 1048576 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 1048576).toFixed(1)} MiB`);

function activeIds(machineId, state) {
  const ids = new Set([machineId]);
  let id = machineId;
  for (const key of state.split(".")) {
    if (!key) continue;
    id = `${id}.${key}`;
    ids.add(id);
  }
  return ids;
}

function remember(actor, state) {
  const list = seen.get(actor) ?? [];
  if (list[list.length - 1] !== state) list.push(state);
  if (list.length > 200) list.shift();
  seen.set(actor, list);
  if (seen.size > 1000) seen.delete(seen.keys().next().value); // handlers come and go: forget the oldest
}

// ---- layout (elkjs) and drawing ------------------------------------------------

function elkGraph(machine) {
  const edges = new Map();
  const anywhere = [];
  const textWidth = (text) => Math.ceil(text.length * 6.4) + 8;
  const visit = (state) => {
    const node = { id: state.id, labels: [{ text: state.key }] };
    if (state.states.length > 0) {
      node.children = state.states.map(visit);
      node.layoutOptions = { "elk.padding": "[top=28,left=14,bottom=14,right=14]" };
    } else {
      node.width = Math.max(70, textWidth(state.key) + 20);
      node.height = 32;
    }
    for (const t of state.transitions) {
      const label = t.guard ? `${t.event} [${t.guard}]` : t.event;
      for (const target of t.targets) {
        if (target.startsWith(`${state.id}.`)) {
          anywhere.push(`${state.key}: ${label} \u2192 ${target.slice(machine.id.length + 1)}`);
          continue;
        }
        const key = `${state.id}->${target}`;
        const edge = edges.get(key) ?? { source: state.id, target, labels: [] };
        if (!edge.labels.includes(label)) edge.labels.push(label);
        edges.set(key, edge);
      }
    }
    return node;
  };
  const children = machine.root.states.map(visit);
  for (const t of machine.root.transitions) {
    if (t.targets.length > 0)
      anywhere.push(`any state: ${t.event} \u2192 ${t.targets.map((x) => x.slice(machine.id.length + 1)).join(", ")}`);
  }
  const elkEdges = [...edges.values()].map((e, i) => {
    const text = e.labels.length > 3 ? `${e.labels.slice(0, 3).join(", ")}, \u2026` : e.labels.join(", ");
    return { id: `e${i}`, sources: [e.source], targets: [e.target], labels: [{ text, width: textWidth(text), height: 14 }] };
  });
  return {
    graph: {
      id: "root",
      layoutOptions: {
        "elk.algorithm": "layered",
        "elk.direction": "RIGHT",
        "elk.hierarchyHandling": "INCLUDE_CHILDREN",
        "elk.json.edgeCoords": "ROOT",
        "elk.json.shapeCoords": "ROOT",
        "elk.layered.spacing.nodeNodeBetweenLayers": "50",
        "elk.spacing.nodeNode": "24",
        "elk.spacing.edgeLabel": "4",
        "elk.edgeRouting": "ORTHOGONAL",
      },
      children,
      edges: elkEdges,
    },
    anywhere,
  };
}

function layoutOf(kind) {
  let layout = view.layouts.get(kind);
  if (!layout) {
    const machine = view.machines[kind];
    if (!machine) return null;
    const { graph, anywhere } = elkGraph(machine);
    layout = elk.layout(graph).then((laid) => ({ laid, anywhere, machine }));
    view.layouts.set(kind, layout);
  }
  return layout;
}

function findState(machine, id) {
  const walk = (s) => (s.id === id ? s : s.states.map(walk).find(Boolean));
  return walk(machine.root);
}

function drawChart({ laid, anywhere, machine }) {
  // Scaled down to the panel's width when wider (viewBox), never up.
  const width = Math.ceil(laid.width) + 2;
  const height = Math.ceil(laid.height) + 2;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, "data-machine": machine.id });
  root.style.maxWidth = "100%";
  root.style.height = "auto";
  const nodes = svg("g");
  const drawNode = (n) => {
    const state = findState(machine, n.id);
    const compound = Array.isArray(n.children) && n.children.length > 0;
    const g = svg("g", { class: `state${compound ? " compound" : ""}${state?.type === "final" ? " final" : ""}`, "data-state-id": n.id });
    const title = svg("title");
    const targetless = (state?.transitions ?? []).filter((t) => t.targets.length === 0).map((t) => t.event);
    title.textContent =
      [
        state?.description,
        state?.entry.length ? `entry: ${state.entry.join(", ")}` : "",
        state?.invoke.length ? `invokes: ${state.invoke.join(", ")}` : "",
        targetless.length ? `handles here: ${targetless.join(", ")}` : "",
      ]
        .filter(Boolean)
        .join("\n") || n.id;
    g.append(title);
    g.append(svg("rect", { x: n.x, y: n.y, width: n.width, height: n.height, rx: compound ? 10 : 14 }));
    const parent = state && machine.root.states.includes(state) ? machine.root : null;
    const initial = (parent ?? findParent(machine, n.id))?.initial === n.id ? "\u25B8 " : "";
    const label = svg("text", {
      x: n.x + (compound ? 10 : n.width / 2),
      y: n.y + (compound ? 18 : n.height / 2 + 4),
      "text-anchor": compound ? "start" : "middle",
    });
    label.textContent = `${initial}${n.labels?.[0]?.text ?? n.id}`;
    g.append(label);
    nodes.append(g);
    for (const c of n.children ?? []) drawNode(c);
  };
  for (const n of laid.children ?? []) drawNode(n);
  const defs = svg("defs");
  defs.append(arrowHead());
  root.append(defs);
  root.append(nodes);
  const edges = svg("g");
  const collect = (n) => [...(n.edges ?? []), ...(n.children ?? []).flatMap(collect)];
  for (const e of collect(laid)) {
    const g = svg("g", { class: "edge", "data-source": e.sources[0], "data-target": e.targets[0] });
    for (const s of e.sections ?? []) {
      const pts = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint];
      g.append(svg("path", { d: pts.map((p, i) => `${i ? "L" : "M"}${p.x},${p.y}`).join(" "), "marker-end": "url(#arrow)" }));
    }
    for (const l of e.labels ?? []) {
      const t = svg("text", { x: l.x ?? 0, y: (l.y ?? 0) + 11 });
      t.textContent = l.text;
      g.append(t);
    }
    edges.append(g);
  }
  root.append(edges);
  $("chart").replaceChildren(root);
  $("anywhere").textContent = anywhere.length ? `Transitions into nested states: ${anywhere.join(" \u00B7 ")}` : "";
}

function findParent(machine, id) {
  const walk = (s) => (s.states.some((c) => c.id === id) ? s : s.states.map(walk).find(Boolean));
  return walk(machine.root);
}

function arrowHead() {
  const marker = svg("marker", {
    id: "arrow",
    viewBox: "0 0 10 10",
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#98a1b3" }));
  return marker;
}

// ---- the followed actor ----------------------------------------------------------

function followedTransitions() {
  return view.history.filter((t) => t.actor === view.followed);
}

function shownState(actor, transitions) {
  if (view.cursor !== null && transitions[view.cursor]) return transitions[view.cursor].state;
  return actor?.state ?? transitions[transitions.length - 1]?.state ?? "";
}

async function renderFollowed() {
  const actor = view.actors.find((a) => a.id === view.followed);
  const transitions = followedTransitions();
  const kind = actor?.kind ?? transitions[0]?.kind;
  const state = shownState(actor, transitions);
  $("followed").textContent = actor ? actor.label : view.followed ? `${view.followed} (gone)` : "-";
  $("state").textContent = state;
  $("state").dataset.state = state;
  renderFacts(actor);
  if (kind) {
    const layout = layoutOf(kind);
    if (layout) {
      const ready = await layout;
      if (view.drawn !== kind) {
        drawChart(ready);
        view.drawn = kind;
      }
      light(ready.machine, state, transitions);
    }
  }
  renderLog(transitions);
}

function light(machine, state, transitions) {
  const ids = activeIds(machine.id, state);
  for (const g of document.querySelectorAll("#chart .state")) g.classList.toggle("active", ids.has(g.dataset.stateId));
  // The transition that led here: from the state before it.
  const at = view.cursor ?? transitions.length - 1;
  let before = at > 0 ? transitions[at - 1]?.state : undefined;
  if (view.cursor === null) {
    // Live: the state seen before this one, even from before the transitions were recorded.
    const states = seen.get(view.followed) ?? [];
    if (states[states.length - 1] === state) before = states[states.length - 2];
  }
  const from = before !== undefined && before !== state ? activeIds(machine.id, before) : new Set();
  for (const g of document.querySelectorAll("#chart .edge"))
    g.classList.toggle("taken", from.has(g.dataset.source) && ids.has(g.dataset.target));
}

function renderFacts(actor) {
  const facts = $("facts");
  facts.replaceChildren();
  if (!actor) return;
  const add = (label, value) => facts.append(el("span", {}, `${label} `, el("b", {}, String(value)), "   "));
  if (actor.request)
    add(
      "request",
      `#${actor.request.id} ${actor.request.kind}${actor.request.name ? ` ${actor.request.name}` : ""}${actor.request.startedAt ? ` ${((Date.now() - actor.request.startedAt) / 1000).toFixed(1)} s` : ""}`,
    );
  const p = actor.progress;
  if (p) {
    if (typeof p.itemsSent === "number") add("items", p.itemsSent);
    if (typeof p.bytesSent === "number" && p.bytesSent > 0) add("bytes", size(p.bytesSent));
    if (typeof p.bytesDone === "number")
      add("bytes", `${size(p.bytesDone)}${typeof p.bytesTotal === "number" ? ` / ${size(p.bytesTotal)}` : ""}`);
    if (typeof p.filesDone === "number") add("files", `${p.filesDone}${typeof p.files === "number" ? ` / ${p.files}` : ""}`);
  }
  if (actor.rate) {
    if (typeof actor.rate.items === "number") add("rate", `${Math.round(actor.rate.items)} items/s`);
    if (typeof actor.rate.bytes === "number" && actor.rate.bytes > 0) add("rate", `${size(actor.rate.bytes)}/s`);
  }
  for (const [k, v] of Object.entries(actor.info)) add(k, v);
}

function renderLog(transitions) {
  const body = $("log").tBodies[0];
  body.replaceChildren();
  const first = Math.max(0, transitions.length - SHOWN_TRANSITIONS);
  for (let i = transitions.length - 1; i >= first; i--) {
    const t = transitions[i];
    const row = el(
      "tr",
      { "data-seq": t.seq },
      el("td", {}, time(t.at)),
      el("td", {}, t.event),
      el("td", {}, t.detail ?? ""),
      el("td", {}, t.status === "active" ? t.state : `${t.state} (${t.status})`),
    );
    if (i === view.cursor) row.className = "current";
    body.append(row);
  }
}

// ---- the tree ----------------------------------------------------------------------

function summary(actor) {
  const parts = [];
  if (actor.request) parts.push(`#${actor.request.id} ${actor.request.kind}${actor.request.name ? ` ${actor.request.name}` : ""}`);
  const p = actor.progress;
  if (p && typeof p.itemsSent === "number") parts.push(`${p.itemsSent} items`);
  if (p && typeof p.bytesDone === "number") parts.push(size(p.bytesDone));
  if (actor.rate?.items !== undefined) parts.push(`${Math.round(actor.rate.items)}/s`);
  else if (actor.rate?.bytes) parts.push(`${size(actor.rate.bytes)}/s`);
  if (actor.info.pool !== undefined) parts.push(`pool ${actor.info.pool}`);
  return parts.join(" \u00B7 ");
}

function renderTree() {
  const byParent = new Map();
  for (const a of view.actors) {
    const list = byParent.get(a.parent) ?? [];
    list.push(a);
    byParent.set(a.parent, list);
  }
  const branch = (parent) => {
    const ul = el("ul");
    for (const a of byParent.get(parent) ?? []) {
      const row = el(
        "span",
        { class: `actor${a.id === view.followed ? " followed" : ""}`, "data-actor-id": a.id, "data-kind": a.kind, "data-state": a.state },
        a.label,
        el("span", { class: "badge" }, a.state),
      );
      const more = summary(a);
      if (more) row.append(el("span", { class: "sub" }, more));
      row.addEventListener("click", () => follow(a.id));
      ul.append(el("li", {}, row, branch(a.id)));
    }
    return ul;
  };
  $("tree").replaceChildren(...branch(null).children);
  $("sources").replaceChildren(
    ...view.sources.map((s) => el("span", { class: s.error ? "error" : "" }, s.error ? `${s.title}: ${s.error}  ` : `${s.title}  `)),
  );
}

function render() {
  renderTree();
  void renderFollowed();
  const mode = view.cursor !== null ? "history" : view.paused ? "paused" : "live";
  $("mode").dataset.mode = mode;
  $("mode").textContent = mode === "history" ? `step ${view.cursor + 1} of ${followedTransitions().length}` : mode;
  $("pause").textContent = view.paused ? "Resume" : "Pause";
}

function follow(id) {
  view.followed = id;
  view.chosen = true;
  view.cursor = null;
  view.drawn = null;
  render();
}

// ---- data ----------------------------------------------------------------------------

function apply(frame) {
  view.actors = frame.actors;
  view.sources = frame.sources;
  for (const t of frame.transitions) if (t.n > view.lastN) remember(t.actor, t.state);
  for (const a of frame.actors) remember(a.id, a.state);
  // A transition can come twice (in the init history and a frame read at the same time): `n` tells.
  const fresh = frame.transitions.filter((t) => t.n > view.lastN);
  if (fresh.length > 0) view.lastN = fresh[fresh.length - 1].n;
  view.history.push(...fresh);
  if (view.history.length > HISTORY) view.history.splice(0, view.history.length - HISTORY);
  if (!view.chosen && !view.actors.some((a) => a.id === view.followed)) {
    view.followed = (view.actors.find((a) => a.kind === "handler" || a.kind === "client") ?? view.actors[0])?.id ?? null;
    view.drawn = null;
  }
}

function resume() {
  view.paused = false;
  view.cursor = null;
  for (const frame of view.buffered.splice(0)) apply(frame);
  render();
}

$("pause").addEventListener("click", () => {
  if (view.paused) resume();
  else {
    view.paused = true;
    render();
  }
});
$("back").addEventListener("click", () => {
  const n = followedTransitions().length;
  if (n === 0) return;
  view.paused = true;
  view.cursor = view.cursor === null ? Math.max(0, n - 2) : Math.max(0, view.cursor - 1);
  render();
});
$("forward").addEventListener("click", () => {
  if (view.cursor === null) return;
  if (view.cursor + 1 >= followedTransitions().length - 1)
    resume(); // the newest transition is the live state
  else {
    view.cursor += 1;
    render();
  }
});

const events = new EventSource("/events");
events.addEventListener("init", (e) => {
  const init = JSON.parse(e.data);
  view.machines = init.machines;
  view.layouts.clear();
  view.drawn = null;
  view.history = [];
  view.buffered = [];
  view.lastN = 0;
  apply(init);
  render();
});
events.addEventListener("frame", (e) => {
  const frame = JSON.parse(e.data);
  if (view.paused) {
    // Held back while paused, folded into one frame so a long pause keeps memory bounded.
    const held = view.buffered.pop();
    view.buffered.push(held ? { ...frame, transitions: [...held.transitions, ...frame.transitions].slice(-HISTORY) } : frame);
  } else {
    apply(frame);
    render();
  }
});
