// reconciler site: the object and lineage pages' pictures, laid out in the browser by dagre (shipped beside this
// file, dagre.min.js, MIT: dagre.LICENSE.txt) from the graph the page holds (a script element of type
// application/json, written by `reconciler site` from drawing.picture), and drawn as drawing.py draws
// a picture laid out on the server: boxes as wide as the longest label, left to right the way data
// flows, every edge leaving its source's side facing its target, crossing each layer between through
// a slot of its own, and meeting its target's facing side. A page holds its picture, or only which
// object and how many levels around it, made here from its landscape's graph (assets/lineage-ENV.js,
// one file every page of the landscape shares instead of each page its own copy of the boxes). The
// environment's lineage page (lineage/ENV.html) takes the object and levels from its address, and its
// column lineage table from assets/columns-ENV.js. Part of reconciler, under its licence.
// Labels are set with textContent only: a name is text, never markup.
(function () {
  "use strict";
  if (!window.dagre) return;
  // the SVG namespace, taken from an element the HTML parser made (no address spelled here)
  var holder = document.createElement("div");
  holder.innerHTML = "<svg></svg>";
  var NS = holder.firstChild.namespaceURI;

  function element(name, attributes, parent) {
    var made = document.createElementNS(NS, name);
    Object.keys(attributes).forEach(function (key) { made.setAttribute(key, attributes[key]); });
    if (parent) parent.appendChild(made);
    return made;
  }

  function text(value, attributes, parent) {
    var made = element("text", attributes, parent);
    made.textContent = value;
    return made;
  }

  // Layers are where boxes are: every box of a layer has the same centre across and the same width.
  function route(points, from, to, layers, width) {
    var step = to.x > from.x ? width / 2 : -width / 2;   // right to left: an edge a cycle turned around
    var out = [[from.x + step, from.y]];
    points.slice(1, -1).forEach(function (p) {
      var layer = layers.find(function (x) { return Math.abs(p.x - x) < width / 2; });
      if (layer !== undefined) out.push([layer - step, p.y], [layer + step, p.y]);
    });   // a point between layers is left out: nothing is drawn there but edges
    out.push([to.x - step, to.y]);
    return out;
  }

  function legend(picture, shown, svg) {
    var group = element("g", { "class": "legend" }, svg), x = picture.margin, m = picture.margin;
    Object.keys(picture.kinds).forEach(function (kind) {
      if (picture.always.indexOf(kind) === -1 && !shown[kind]) return;
      element("rect", { x: x, y: m - 8, width: 14, height: 14, rx: 3, fill: picture.kinds[kind], stroke: "#868e96" },
        group);
      text(kind, { x: x + 18, y: m + 3 }, group);
      x += 28 + 8 * kind.length;
    });
    element("path", { d: "M" + x + "," + (m - 1) + " L" + (x + 30) + "," + (m - 1), stroke: "#adb5bd",
      "marker-end": "url(#arrow)" }, group);
    text("data flows this way", { x: x + 36, y: m + 3 }, group);
  }

  function draw(picture, into) {
    var width = picture.width, height = picture.height;
    var graph = new dagre.graphlib.Graph();
    graph.setGraph({ rankdir: "LR", ranksep: picture.gap[0], nodesep: picture.gap[1], edgesep: picture.gap[1],
      marginx: 0, marginy: 0 });
    graph.setDefaultEdgeLabel(function () { return {}; });
    // dagre knows a box by its position, never by its name: a schema named `constructor` or `toString`
    // is a plain key to dagre's tables only as long as no name is one
    var key = Object.create(null);
    picture.boxes.forEach(function (box, i) { key[box[0]] = "b" + i; });
    picture.boxes.forEach(function (box) { graph.setNode(key[box[0]], { width: width, height: height }); });
    picture.edges.forEach(function (edge) { graph.setEdge(key[edge[0]], key[edge[1]]); });
    dagre.layout(graph);
    var layers = [];
    graph.nodes().forEach(function (id) {
      var x = graph.node(id).x;
      if (!layers.some(function (seen) { return Math.abs(seen - x) < 0.5; })) layers.push(x);
    });
    var routes = picture.edges.map(function (edge) {
      var from = key[edge[0]], to = key[edge[1]];
      return route(graph.edge(from, to).points, graph.node(from), graph.node(to), layers, width);
    });
    // the canvas holds every box and every edge, the legend above them
    var xs = [], ys = [];
    graph.nodes().forEach(function (id) {
      var n = graph.node(id);
      xs.push(n.x - width / 2, n.x + width / 2);
      ys.push(n.y - height / 2, n.y + height / 2);
    });
    routes.forEach(function (points) { points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var dx = picture.margin - Math.min.apply(null, xs), dy = picture.margin + picture.legend - Math.min.apply(null, ys);
    var right = Math.max(Math.max.apply(null, xs) + dx + picture.margin, 620);
    var bottom = Math.max.apply(null, ys) + dy + picture.margin;
    var svg = element("svg", { width: right.toFixed(0), height: bottom.toFixed(0),
      viewBox: "0 0 " + right.toFixed(0) + " " + bottom.toFixed(0), "font-family": "sans-serif", "font-size": 12 });
    var marker = element("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6,
      markerHeight: 6, orient: "auto" }, element("defs", {}, svg));
    element("path", { d: "M0,0 L10,5 L0,10 z", fill: "#868e96" }, marker);
    var shown = {};
    picture.boxes.forEach(function (box) { shown[box[2]] = true; });
    legend(picture, shown, svg);
    picture.edges.forEach(function (edge, i) {
      element("path", { "class": "edge", "data-from": edge[0], "data-to": edge[1], fill: "none", stroke: "#adb5bd",
        "marker-end": "url(#arrow)", d: "M" + routes[i].map(function (p) {
          return (p[0] + dx).toFixed(1) + "," + (p[1] + dy).toFixed(1);
        }).join(" L") }, svg);
    });
    picture.boxes.forEach(function (box) {
      var id = box[0], label = box[1], kind = box[2], state = box[3], href = box[4], n = graph.node(key[id]);
      var x = n.x + dx - width / 2, y = n.y + dy - height / 2;
      var parent = href ? element("a", { href: href }, svg) : svg;
      var group = element("g", { "class": "node", "data-id": id, "data-kind": kind }, parent);
      if (state) group.setAttribute("data-state", state);
      element("title", {}, group).textContent = kind + " " + label + (state ? " (" + state + ")" : "");
      element("rect", { x: x.toFixed(1), y: y.toFixed(1), width: width.toFixed(1), height: height, rx: 5,
        fill: picture.kinds[kind] || "#f1f3f5", stroke: picture.states[state] || "#868e96",
        "stroke-width": state ? 3 : 1 }, group);
      text(label, { x: (x + 8).toFixed(1), y: (y + height / 2 + 4).toFixed(1) }, group);
    });
    into.appendChild(svg);
  }

  // The indices of the boxes at most `levels` edges upstream or downstream of box `start`, in the boxes' order.
  function within(graph, start, levels) {
    var near = {}, sides = [graph.succ, graph.pred];
    near[start] = true;
    sides.forEach(function (next) {
      var seen = {}, frontier = [start];
      seen[start] = true;
      for (var level = 0; level < levels; level++) {
        var found = [];
        frontier.forEach(function (i) {
          next[i].forEach(function (j) { if (!seen[j]) { seen[j] = near[j] = true; found.push(j); } });
        });
        frontier = found;
      }
    });
    return Object.keys(near).map(Number).sort(function (a, b) { return a - b; });
  }

  function style(graph, labels) {   // the measures and colours of a picture whose boxes carry `labels`
    var longest = 0;
    labels.forEach(function (label) { longest = Math.max(longest, label.length); });
    return { width: Math.max(graph.width, longest * graph.character + graph.padding), height: graph.height,
      gap: graph.gap, margin: graph.margin, legend: graph.legend, kinds: graph.kinds, states: graph.states,
      always: graph.always };
  }

  // What drawing.picture makes on the server, made here from the landscape's whole graph (drawing.shared,
  // in a script file every page of the landscape shares): the boxes `shown` (indices), every edge among
  // them, box `start` outlined, boxes as wide as the longest label; beyond graph.collapse boxes, one box
  // a schema (as drawing._by_schema: an edge where an object of one reads one of another, none at all
  // where schemas read each other).
  function picture(graph, shown, start) {
    if (shown.length > graph.collapse) return bySchema(graph, shown);
    var near = {};
    shown.forEach(function (i) { near[i] = true; });
    var edges = [];
    shown.forEach(function (i) {
      graph.succ[i].forEach(function (j) { if (near[j]) edges.push([graph.boxes[i][0], graph.boxes[j][0]]); });
    });
    var made = style(graph, shown.map(function (i) { return graph.boxes[i][0]; }));
    made.boxes = shown.map(function (i) {
      var box = graph.boxes[i];
      return [box[0], box[0], box[1], i === start ? "focus" : "", box[2]];
    });
    made.edges = edges;
    return made;
  }

  function bySchema(graph, shown) {
    var counts = {}, near = {}, pairs = {}, edges = [];
    shown.forEach(function (i) { near[i] = true; counts[graph.boxes[i][3]] = (counts[graph.boxes[i][3]] || 0) + 1; });
    shown.forEach(function (i) {
      graph.succ[i].forEach(function (j) {
        var a = graph.boxes[i][3], b = graph.boxes[j][3];
        if (near[j] && a !== b && !pairs[a + " " + b]) { pairs[a + " " + b] = true; edges.push([a, b]); }
      });
    });
    var schemas = Object.keys(counts).map(Number).sort(function (a, b) { return a - b; });
    if (cyclic(schemas, edges)) edges = [];
    var labels = schemas.map(function (s) { return graph.schemas[s] + " (" + counts[s] + " objects)"; });
    var made = style(graph, labels);
    made.boxes = schemas.map(function (s, k) { return [graph.schemas[s], labels[k], "schema", "", ""]; });
    made.edges = edges.map(function (edge) { return [graph.schemas[edge[0]], graph.schemas[edge[1]]]; })
      .sort(function (a, b) { return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0; });
    return made;
  }

  function cyclic(nodes, edges) {   // whether the edges close a cycle (dagre's own graphlib decides)
    var schemas = new dagre.graphlib.Graph();
    nodes.forEach(function (n) { schemas.setNode(String(n)); });
    edges.forEach(function (edge) { schemas.setEdge(String(edge[0]), String(edge[1])); });
    return !dagre.graphlib.alg.isAcyclic(schemas);
  }

  function around(graph, focus, levels) {
    var start = graph.ids[focus];
    return picture(graph, within(graph, start, levels), start);
  }

  function indexed(graph) {   // once per page: each box's index by id, and its edges either way
    graph.ids = Object.create(null);
    graph.succ = graph.boxes.map(function () { return []; });
    graph.pred = graph.boxes.map(function () { return []; });
    graph.boxes.forEach(function (box, i) { graph.ids[box[0]] = i; });
    graph.edges.forEach(function (edge) { graph.succ[edge[0]].push(edge[1]); graph.pred[edge[1]].push(edge[0]); });
    return graph;
  }

  document.querySelectorAll('script[type="application/json"].picture').forEach(function (data) {
    var into = document.getElementById(data.getAttribute("data-into")), picture = JSON.parse(data.textContent);
    if (picture.focus !== undefined) {
      var graph = (window.RECONCILER_LINEAGE || {})[picture.landscape];
      if (!graph) return;
      picture = around(graph.ids ? graph : indexed(graph), picture.focus, picture.levels);
    }
    if (into) draw(picture, into);
  });

  // The environment's lineage page around one object (site_lineage.around_page): which object and how
  // many levels come from the address (?object=schema.name&levels=N), as the page's form sends them.
  // Names are set as text, never as markup.
  function link(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  }

  function cell(row, tag, parts) {
    var made = document.createElement(tag);
    parts.forEach(function (part, k) {
      if (k) made.appendChild(document.createTextNode(", "));
      made.appendChild(typeof part === "string" ? document.createTextNode(part) : part);
    });
    row.appendChild(made);
    return made;
  }

  // Each column of a shown view whose values come from a shown object's, with those objects' columns;
  // the view named once over its columns (site_lineage.column_lineage writes the data).
  function columnTable(graph, views, shown) {
    var near = {}, body = document.createElement("tbody");
    shown.forEach(function (i) { near[i] = true; });
    views.forEach(function (view) {
      if (!near[view[0]]) return;
      var kept = [];
      view[1].forEach(function (column) {
        var sources = column[1].filter(function (source) { return near[source[0]]; });
        if (sources.length) kept.push([column[0], sources]);
      });
      kept.forEach(function (column, k) {
        var row = document.createElement("tr");
        if (k === 0) {
          var head = cell(row, "th", [link(graph.boxes[view[0]][2], graph.boxes[view[0]][0])]);
          head.setAttribute("scope", "rowgroup");
          head.setAttribute("rowspan", String(kept.length));
        }
        cell(row, "td", [column[0]]);
        cell(row, "td", column[1].map(function (source) {
          var box = graph.boxes[source[0]];
          return link(box[2], box[0] + "." + source[1]);
        }));
        body.appendChild(row);
      });
    });
    if (!body.firstChild) {
      var none = document.createElement("p");
      none.className = "empty";
      none.textContent = "No column of these objects comes from another shown here.";
      return none;
    }
    var table = document.createElement("table"), head = document.createElement("thead"),
      row = document.createElement("tr");
    ["view", "column", "comes from"].forEach(function (name) { cell(row, "th", [name]).setAttribute("scope", "col"); });
    head.appendChild(row);
    table.appendChild(head);
    table.appendChild(body);
    return table;
  }

  document.querySelectorAll('script[type="application/json"].around').forEach(function (data) {
    var page = JSON.parse(data.textContent), asked = new URLSearchParams(window.location.search);
    var graph = (window.RECONCILER_LINEAGE || {})[page.landscape];
    var views = (window.RECONCILER_COLUMNS || {})[page.landscape] || [];
    var focus = asked.get("object"), levels = parseInt(asked.get("levels") || "2", 10);
    if (!graph || !focus) return;
    if (!(levels >= 1 && levels <= page.most)) levels = 2;
    var form = document.querySelector("form.around"), said = document.getElementById("around");
    form.elements.object.value = focus;
    form.elements.levels.value = String(levels);
    graph = graph.ids ? graph : indexed(graph);
    var start = graph.ids[focus];
    said.textContent = "";
    if (start === undefined) {
      said.textContent = "Environment " + page.landscape + " has no object " + focus + ".";
      return;
    }
    var shown = within(graph, start, levels), title = "Lineage of " + focus + " ±" + levels;
    document.querySelector("main h1").textContent = title;
    document.title = title + " · reconciler";
    said.appendChild(document.createTextNode("Environment " + page.landscape + ": " + shown.length +
      " objects within " + levels + " level" + (levels > 1 ? "s" : "") + " of "));
    said.appendChild(link(graph.boxes[start][2], focus));
    said.appendChild(document.createTextNode(shown.length > graph.collapse
      ? ", drawn one box a schema, arrows the way data flows." : ", arrows the way data flows."));
    document.getElementById("column-lineage").appendChild(columnTable(graph, views, shown));
    draw(picture(graph, shown, start), document.getElementById(data.getAttribute("data-into")));
  });
})();
