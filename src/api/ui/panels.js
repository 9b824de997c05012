// The side panels of the execution page: the selected node's details and captured output,
// and the stop record built from the execution's journal rows.
'use strict';

const WardenPanels = (() => {
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text != null) e.textContent = text;
    return e;
  }

  function definitions(pairs) {
    const dl = el('dl');
    for (const [term, value] of pairs) {
      const dd = el('dd', null, value == null ? '–' : String(value));
      dd.dataset.field = term;
      dl.append(el('dt', null, term), dd);
    }
    return dl;
  }

  function time(ms) { return ms == null ? null : new Date(ms).toLocaleString(); }

  // The details of node `node` of execution `id`; its output is fetched through `api` (the
  // page's authenticated fetch) and shown in place, since a plain link cannot carry a token.
  function nodePanel(id, node, api) {
    const panel = el('section', 'panel node-panel');
    panel.dataset.node = node.id;
    panel.append(el('h2', null, 'Node ' + node.id));
    panel.append(definitions([
      ['state', node.status],
      ['attempt', node.attempt],
      ['pid', node.pid],
      ['started', time(node.startedAt)],
      ['ended', time(node.endedAt)],
      ['duration', WardenDag.formatMs(WardenDag.durationOf(node, Date.now()))],
      ['exit', WardenDag.exitText(node)],
      ['cost', WardenDag.formatCost(node.costUsd)],
      ['needs', (node.needs || []).join(', ') || 'none'],
    ]));
    const bar = el('div', 'toolbar');
    const pre = el('pre', 'log');
    pre.hidden = true;
    for (const stream of ['stdout', 'stderr']) {
      const button = el('button', null, stream);
      button.type = 'button';
      button.dataset.stream = stream;
      button.addEventListener('click', async () => {
        pre.hidden = false;
        pre.textContent = 'loading…';
        const path = `/api/executions/${encodeURIComponent(id)}/nodes/` +
                     `${encodeURIComponent(node.id)}/log?stream=${stream}`;
        try {
          const res = await api(path);
          const text = await res.text();
          pre.textContent = res.ok ? (text || `(no ${stream} captured)`) : text;
        } catch (error) {
          pre.textContent = String(error);
        }
      });
      bar.append(button);
    }
    panel.append(bar, pre);
    return panel;
  }

  // The stop record from the journal rows `events` (api.md's events): the first stop request
  // (who, why, grace), how many requests joined it, and the outcome once completed. Null when
  // the rows hold no stop.
  function stopRecord(events) {
    let request = null, completed = null, joined = 0, killed = 0, unkillable = 0;
    for (const e of events) {
      const p = e.payload || {};
      if (e.kind === 'execution.stop_requested') {
        if (!request) request = {...p, at: e.at_ms, seq: e.seq};
        else joined++;
      } else if (e.kind === 'execution.stop_completed') {
        completed = {...p, at: e.at_ms};
      } else if (request && e.kind === 'node.exited' && p.killed) {
        killed++;
      } else if (request && e.kind === 'node.unkillable') {
        unkillable++;
      }
    }
    if (!request) return null;
    return {request, completed, joined, killed, unkillable};
  }

  function stopPanel(record) {
    const panel = el('section', 'panel stop-panel');
    panel.id = 'stop-record';
    panel.append(el('h2', null, 'Stop record'));
    const r = record.request, c = record.completed;
    const who = r.requestedBy + (r.requestedByComm ? ` (${r.requestedByComm})` : '');
    panel.append(definitions([
      ['requested by', who],
      ['requested at', time(r.at)],
      ['reason', r.reason],
      ['note', r.note || null],
      ['grace', r.graceMs == null ? 'each node\'s own' : r.graceMs + ' ms'],
      ['joined by', record.joined ? record.joined + ' more request(s)' : null],
      ['outcome', c ? c.status : 'stopping…'],
      ['killed', c ? record.killed : null],
      ['unkillable', c ? record.unkillable : null],
      ['final cost', c ? WardenDag.formatCost(c.finalCostUsd) : null],
      ['duration', c ? WardenDag.formatMs(c.durationMs) : null],
    ]));
    return panel;
  }

  return {el, nodePanel, stopRecord, stopPanel};
})();
