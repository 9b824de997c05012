// The DAG of one execution drawn as SVG: layered left to right (a node's layer is the
// longest path to it from a root), ordered within each layer by a bounded barycenter pass,
// nodes coloured by state (app.css), edges from each node's `needs`. All edges into one
// layer are a single <path>, so that a 10×100 layered graph (90,000 edges) stays cheap.
'use strict';

const WardenDag = (() => {
  // Above these the page lists the nodes instead of drawing them.
  const MAX_NODES = 5000;
  const MAX_EDGES = 200000;
  const W = 150, H = 34, ROW_GAP = 8, COL_GAP = 14, LAYER_GAP = 70, PAD = 10;
  const MAX_ROWS = 40;  // a bigger layer wraps into several columns
  const STATES = ['pending', 'running', 'paused', 'stopping', 'succeeded', 'failed', 'skipped',
                  'stopped', 'lost', 'unkillable'];

  function escapeText(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;',
                                                   '"': '&quot;', "'": '&#39;'}[c]));
  }

  function edgeCount(nodes) {
    let count = 0;
    for (const n of nodes) count += (n.needs || []).length;
    return count;
  }

  // Layers and order: returns {layerOf, layers: [[node index...]...]}.
  function layout(nodes) {
    const n = nodes.length;
    const index = new Map();
    nodes.forEach((node, i) => index.set(node.id, i));
    const preds = nodes.map((node) => (node.needs || []).map((id) => index.get(id))
                                          .filter((j) => j !== undefined));
    const succs = Array.from({length: n}, () => []);
    const indegree = new Int32Array(n);
    preds.forEach((ps, i) => { for (const j of ps) { succs[j].push(i); indegree[i]++; } });
    const layerOf = new Int32Array(n);
    const queue = [];
    for (let i = 0; i < n; i++) if (indegree[i] === 0) queue.push(i);
    for (let head = 0; head < queue.length; head++) {
      const j = queue[head];
      for (const i of succs[j]) {
        if (layerOf[j] + 1 > layerOf[i]) layerOf[i] = layerOf[j] + 1;
        if (--indegree[i] === 0) queue.push(i);
      }
    }
    let depth = 0;
    for (let i = 0; i < n; i++) depth = Math.max(depth, layerOf[i]);
    const layers = Array.from({length: depth + 1}, () => []);
    for (let i = 0; i < n; i++) layers[layerOf[i]].push(i);
    // Position of each node within its layer, 0..1.
    const pos = new Float64Array(n);
    const place = (layer) => layer.forEach((i, k) => { pos[i] = layer.length > 1 ? k / (layer.length - 1) : 0.5; });
    layers.forEach(place);
    // One sweep down (by what a node needs) and one back up (by what needs it): O(edges).
    const sweep = (neighbours, order) => {
      for (const L of order) {
        const layer = layers[L];
        const key = new Map();
        for (const i of layer) {
          const ns = neighbours[i];
          if (ns.length === 0) { key.set(i, pos[i]); continue; }
          let sum = 0;
          for (const j of ns) sum += pos[j];
          key.set(i, sum / ns.length);
        }
        layer.sort((a, b) => key.get(a) - key.get(b) || a - b);
        place(layer);
      }
    };
    const down = [], up = [];
    for (let L = 1; L < layers.length; L++) down.push(L);
    for (let L = layers.length - 2; L >= 0; L--) up.push(L);
    sweep(preds, down);
    sweep(succs, up);
    return {layers, preds};
  }

  function formatMs(ms) {
    if (ms == null) return '–';
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
  }

  function formatCost(usd) {
    if (!usd) return '$0';
    return '$' + (usd < 0.0001 ? usd.toPrecision(2) : usd.toFixed(4));
  }

  function durationOf(node, now) {
    if (node.startedAt == null) return null;
    return (node.endedAt != null ? node.endedAt : now) - node.startedAt;
  }

  function exitText(node) {
    if (node.signal) return node.signal;
    if (node.exitCode != null) return 'exit ' + node.exitCode;
    return '–';
  }

  function subline(node) {
    let text = node.status;
    if (node.attempt > 1) text += ' #' + node.attempt;
    if (node.signal) text += ' ' + node.signal;
    else if (node.exitCode != null && node.exitCode !== 0) text += ' exit ' + node.exitCode;
    return text;
  }

  function titleText(node, now) {
    return node.id + '\nstatus: ' + node.status + '\nattempt: ' + node.attempt +
           '\nduration: ' + formatMs(durationOf(node, now)) + '\nexit: ' + exitText(node) +
           '\ncost: ' + formatCost(node.costUsd);
  }

  function shortId(id) { return id.length > 20 ? id.slice(0, 19) + '…' : id; }

  // Draws `execution` into `container`; `onSelect(nodeId)` on a click. Returns a handle with
  // update(execution) (same nodes: recolours in place) and select(nodeId), or null when the
  // graph is over the limits (then a list is shown instead, with the reason).
  function render(container, execution, onSelect) {
    const nodes = execution.nodes;
    const edges = edgeCount(nodes);
    if (nodes.length > MAX_NODES || edges > MAX_EDGES) {
      container.textContent = '';
      const note = document.createElement('p');
      note.className = 'muted';
      note.textContent = `${nodes.length} nodes and ${edges} edges: over the drawing limit of ` +
          `${MAX_NODES} nodes or ${MAX_EDGES} edges, so the nodes are listed instead.`;
      container.append(note);
      return renderList(container, execution, onSelect);
    }
    const {layers, preds} = layout(nodes);
    const x = new Float64Array(nodes.length), y = new Float64Array(nodes.length);
    let maxRows = 1;
    for (const layer of layers) maxRows = Math.max(maxRows, Math.min(layer.length, MAX_ROWS));
    const fullHeight = maxRows * (H + ROW_GAP) - ROW_GAP;
    const layerX = [];
    let left = PAD;
    for (const layer of layers) {
      layerX.push(left);
      const cols = Math.max(1, Math.ceil(layer.length / MAX_ROWS));
      const rows = Math.ceil(layer.length / cols);
      const top = PAD + (fullHeight - (rows * (H + ROW_GAP) - ROW_GAP)) / 2;
      layer.forEach((i, k) => {
        x[i] = left + Math.floor(k / rows) * (W + COL_GAP);
        y[i] = top + (k % rows) * (H + ROW_GAP);
      });
      left += cols * (W + COL_GAP) - COL_GAP + LAYER_GAP;
    }
    const width = left - LAYER_GAP + PAD, height = fullHeight + 2 * PAD;
    const curved = edges <= 2000;
    const parts = [];
    parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="${width}" ` +
               `height="${height}" viewBox="0 0 ${width} ${height}" ` +
               `data-node-count="${nodes.length}" data-edge-count="${edges}">`);
    // Edges, one path per target layer.
    layers.forEach((layer) => {
      let d = '';
      for (const i of layer) {
        const x2 = x[i], y2 = y[i] + H / 2;
        for (const j of preds[i]) {
          const x1 = x[j] + W, y1 = y[j] + H / 2;
          if (curved) {
            const mid = (x1 + x2) / 2;
            d += `M${x1} ${y1}C${mid} ${y1} ${mid} ${y2} ${x2} ${y2}`;
          } else {
            d += `M${x1} ${y1}L${x2} ${y2}`;
          }
        }
      }
      if (d) parts.push(`<path class="edges${curved ? '' : ' dense'}" d="${d}"/>`);
    });
    const now = Date.now();
    nodes.forEach((node, i) => {
      parts.push(`<g class="node s-${escapeText(node.status)}" data-index="${i}" ` +
                 `data-node="${escapeText(node.id)}" data-state="${escapeText(node.status)}" ` +
                 `transform="translate(${x[i]},${y[i]})"><title>${escapeText(titleText(node, now))}` +
                 `</title><rect width="${W}" height="${H}" rx="6" ry="6"/>` +
                 `<text x="8" y="14">${escapeText(shortId(node.id))}</text>` +
                 `<text class="sub" x="8" y="28">${escapeText(subline(node))}</text></g>`);
    });
    parts.push('</svg>');
    container.innerHTML = parts.join('');
    const svg = container.firstElementChild;
    const groups = Array.from(svg.querySelectorAll('g.node'));
    let selected = null;
    svg.addEventListener('click', (event) => {
      const g = event.target.closest('g.node');
      if (g) onSelect(nodes[Number(g.dataset.index)].id);
    });
    const ids = nodes.map((node) => node.id);
    return {
      kind: 'svg',
      ids,
      update(next) {
        const t = Date.now();
        next.nodes.forEach((node, i) => {
          const g = groups[i];
          if (g.dataset.state !== node.status) {
            g.classList.remove('s-' + g.dataset.state);
            g.classList.add('s-' + node.status);
            g.dataset.state = node.status;
          }
          g.children[0].textContent = titleText(node, t);
          g.children[3].textContent = subline(node);
        });
      },
      select(id) {
        if (selected) selected.classList.remove('selected');
        const k = ids.indexOf(id);
        selected = k >= 0 ? groups[k] : null;
        if (selected) selected.classList.add('selected');
      },
    };
  }

  // The fallback for graphs over the limits: a table of the nodes.
  function renderList(container, execution, onSelect) {
    const table = document.createElement('table');
    table.className = 'list';
    table.innerHTML = '<thead><tr><th>node</th><th>state</th><th class="num">attempt</th>' +
                      '<th>exit</th><th class="num">cost</th><th>needs</th></tr></thead>';
    const body = document.createElement('tbody');
    table.append(body);
    container.append(table);
    const ids = execution.nodes.map((node) => node.id);
    const fill = (next) => {
      body.textContent = '';
      for (const node of next.nodes) {
        const row = body.insertRow();
        row.dataset.node = node.id;
        row.dataset.state = node.status;
        const link = document.createElement('a');
        link.href = '#';
        link.textContent = node.id;
        link.addEventListener('click', (event) => { event.preventDefault(); onSelect(node.id); });
        row.insertCell().append(link);
        const badge = document.createElement('span');
        badge.className = 'badge s-' + node.status;
        badge.textContent = node.status;
        row.insertCell().append(badge);
        const cells = [String(node.attempt), exitText(node), formatCost(node.costUsd),
                       (node.needs || []).join(', ')];
        cells.forEach((text, k) => {
          const cell = row.insertCell();
          cell.textContent = text;
          if (k === 0 || k === 2) cell.className = 'num';
        });
      }
    };
    fill(execution);
    return {kind: 'list', ids, update: fill, select() {}};
  }

  function legend() {
    const box = document.createElement('div');
    box.className = 'legend';
    for (const state of STATES) {
      const item = document.createElement('span');
      const swatch = document.createElement('span');
      swatch.className = 'swatch s-' + state;
      item.append(swatch, state);
      box.append(item);
    }
    return box;
  }

  return {render, legend, formatMs, formatCost, durationOf, exitText, MAX_NODES, MAX_EDGES};
})();
