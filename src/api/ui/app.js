// The Warden web view: the executions list (#/) and one execution (#/executions/ID), read
// and driven through the JSON API only. The execution page follows the execution's event
// stream (one stream per page) and refetches the execution when events arrive: the state
// machine lives in wardend, never here.
'use strict';

(() => {
  const main = document.getElementById('main');
  const live = document.getElementById('live');
  const tokenForm = document.getElementById('token-form');
  const tokenInput = document.getElementById('token-input');
  const tokenError = document.getElementById('token-error');
  const TOKEN_KEY = 'warden.token';
  const {el} = WardenPanels;
  const ACTIVE = ['idle', 'running', 'paused', 'stopping'];
  let page = null;  // the page shown: {dispose()}

  class AuthRequired extends Error {}

  // fetch() for the API: sends the token when there is one (TCP); a 401 asks for one.
  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.set('Authorization', 'Bearer ' + token);
    const res = await fetch(path, {...options, headers, cache: 'no-store', credentials: 'omit'});
    if (res.status === 401) {
      askToken(token ? 'wardend refused that token.' : '');
      throw new AuthRequired('a token is needed');
    }
    tokenForm.hidden = true;
    return res;
  }

  // A POST under the API's cross-site rules: always a JSON body with its content type.
  function postJson(path, body) {
    return api(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                      body: JSON.stringify(body)});
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      return `${res.status}: ${body.error ? body.error.message : JSON.stringify(body)}`;
    } catch (_) {
      return `HTTP ${res.status}`;
    }
  }

  function askToken(message) {
    tokenError.textContent = message;
    tokenForm.hidden = false;
    tokenInput.focus();
  }

  tokenForm.addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    tokenInput.value = '';
    tokenForm.hidden = true;
    route();
  });

  function markRendered() {
    // After the next paint: the time from navigation to a complete drawing.
    requestAnimationFrame(() => setTimeout(() => {
      document.body.dataset.rendered = String(Math.round(performance.now()));
    }, 0));
  }

  function showError(where, error) {
    if (error instanceof AuthRequired || (error && error.name === 'AbortError')) return;
    where.textContent = String(error && error.message ? error.message : error);
  }

  function age(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }

  function doneCount(execution) {
    return execution.nodes.filter((n) => n.status === 'succeeded').length;
  }

  function badge(status) {
    const b = el('span', 'badge s-' + status, status);
    b.dataset.state = status;
    return b;
  }

  // #/ and #/?state=all: the list, loaded once and again on Refresh or when the tab is shown
  // again (no polling).
  function listPage(state) {
    main.textContent = '';
    live.textContent = '';
    main.append(el('h1', null, 'Executions'));
    const bar = el('div', 'toolbar');
    for (const s of ['active', 'all']) {
      const link = el('a', null, s === state ? `[${s}]` : s);
      link.href = s === 'active' ? '#/' : '#/?state=all';
      bar.append(link);
    }
    const refresh = el('button', null, 'Refresh');
    refresh.type = 'button';
    const error = el('span', 'error');
    bar.append(refresh, error);
    const table = el('table', 'list');
    table.innerHTML = '<thead><tr><th>state</th><th>name</th><th>id</th>' +
                      '<th class="num">nodes done/total</th><th class="num">cost</th>' +
                      '<th class="num">age</th></tr></thead><tbody></tbody>';
    main.append(bar, table);
    const body = table.tBodies[0];
    const controller = new AbortController();
    async function load() {
      error.textContent = '';
      try {
        const res = await api(`/api/executions?state=${state}`, {signal: controller.signal});
        if (!res.ok) throw new Error(await errorText(res));
        const {executions} = await res.json();
        body.textContent = '';
        for (const x of executions.slice().reverse()) {
          const row = body.insertRow();
          row.dataset.execution = x.executionId;
          row.insertCell().append(badge(x.status));
          const link = el('a', null, x.name || '(unnamed)');
          link.href = '#/executions/' + encodeURIComponent(x.executionId);
          row.insertCell().append(link);
          row.insertCell().textContent = x.executionId;
          const cells = [`${doneCount(x)}/${x.nodes.length}`, WardenDag.formatCost(x.costUsd),
                         age(x.createdAt)];
          for (const text of cells) {
            const cell = row.insertCell();
            cell.className = 'num';
            cell.textContent = text;
          }
        }
        if (executions.length === 0) {
          const cell = body.insertRow().insertCell();
          cell.colSpan = 6;
          cell.className = 'muted';
          cell.textContent = state === 'active' ? 'No active execution.' : 'No execution.';
        }
        markRendered();
      } catch (e) {
        showError(error, e);
      }
    }
    const onVisible = () => { if (document.visibilityState === 'visible') load(); };
    refresh.addEventListener('click', load);
    document.addEventListener('visibilitychange', onVisible);
    load();
    return {dispose() { controller.abort(); document.removeEventListener('visibilitychange', onVisible); }};
  }

  // #/executions/ID: the DAG, live.
  function executionPage(id) {
    main.textContent = '';
    const controller = new AbortController();
    const signal = controller.signal;
    const path = '/api/executions/' + encodeURIComponent(id);
    let execution = null, graph = null, selected = null, timer = null, rendered = false;

    const title = el('h1', null, 'Execution ' + id);
    const status = el('span', 'badge');
    const summary = el('span', 'muted');
    const bar = el('div', 'toolbar');
    const buttons = {};
    for (const action of ['pause', 'resume', 'stop']) {
      const b = el('button', action === 'stop' ? 'danger' : null, action[0].toUpperCase() + action.slice(1));
      b.type = 'button';
      b.id = 'action-' + action;
      b.disabled = true;
      buttons[action] = b;
    }
    const confirmBox = el('span', 'confirm');
    confirmBox.hidden = true;
    const confirmStop = el('button', 'danger', 'Stop it now');
    confirmStop.type = 'button';
    confirmStop.id = 'confirm-stop';
    const cancelStop = el('button', null, 'Cancel');
    cancelStop.type = 'button';
    confirmBox.append('Stop every running node (SIGTERM, then SIGKILL after the grace)? ',
                      confirmStop, ' ', cancelStop);
    const error = el('span', 'error');
    bar.append(status, buttons.pause, buttons.resume, buttons.stop, confirmBox, summary, error);
    const graphBox = el('div', 'graph');
    graphBox.id = 'graph';
    const side = el('div', 'side');
    const stopSlot = el('div');
    const nodeSlot = el('div');
    side.append(stopSlot, nodeSlot);
    const layout = el('div', 'layout');
    layout.append(graphBox, side);
    main.append(title, bar, WardenDag.legend(), layout);

    async function act(action, body) {
      error.textContent = '';
      try {
        const res = await postJson(`${path}/${action}`, body);
        if (!res.ok) error.textContent = await errorText(res);
      } catch (e) {
        showError(error, e);
      }
      refetch();
    }
    buttons.pause.addEventListener('click', () => act('pause', {}));
    buttons.resume.addEventListener('click', () => act('resume', {}));
    buttons.stop.addEventListener('click', () => { confirmBox.hidden = false; });
    cancelStop.addEventListener('click', () => { confirmBox.hidden = true; });
    confirmStop.addEventListener('click', () => {
      confirmBox.hidden = true;
      act('stop', {reason: 'user_abort', note: 'stopped from the web view', wait: false});
    });

    function select(nodeId) {
      selected = nodeId;
      if (graph) graph.select(nodeId);
      showNode();
    }

    function showNode() {
      nodeSlot.textContent = '';
      const node = selected && execution.nodes.find((n) => n.id === selected);
      if (node) nodeSlot.append(WardenPanels.nodePanel(id, node, api));
    }

    async function loadStopRecord() {
      const res = await api(`${path}/events`, {signal});
      if (!res.ok) return;
      const record = WardenPanels.stopRecord((await res.json()).events);
      stopSlot.textContent = '';
      if (record) stopSlot.append(WardenPanels.stopPanel(record));
    }

    function show() {
      title.textContent = (execution.name || 'Execution') + ' ';
      title.append(el('span', 'muted', execution.executionId));
      status.className = 'badge s-' + execution.status;
      status.textContent = execution.status;
      status.id = 'execution-status';
      status.dataset.state = execution.status;
      buttons.pause.disabled = execution.status !== 'running';
      buttons.resume.disabled = execution.status !== 'paused';
      buttons.stop.disabled = !['idle', 'running', 'paused'].includes(execution.status);
      summary.textContent = `${doneCount(execution)}/${execution.nodes.length} nodes done · ` +
          `cost ${WardenDag.formatCost(execution.costUsd)} · journal seq ${execution.asOfSeq}`;
      const sameNodes = graph && graph.ids.length === execution.nodes.length &&
                        graph.ids.every((nodeId, i) => nodeId === execution.nodes[i].id);
      if (sameNodes) {
        graph.update(execution);
      } else {
        graph = WardenDag.render(graphBox, execution, select);
        if (selected) graph.select(selected);
      }
      if (!rendered) {
        rendered = true;
        markRendered();
      }
      if (selected && !nodeSlot.querySelector('pre:not([hidden])')) showNode();
      if (['stopping', 'stopped', 'failed'].includes(execution.status)) {
        loadStopRecord().catch((e) => showError(error, e));
      }
    }

    async function refetch() {
      try {
        const res = await api(path, {signal});
        if (!res.ok) throw new Error(await errorText(res));
        execution = await res.json();
        show();
      } catch (e) {
        showError(error, e);
      }
    }

    // Events change the execution: refetch it, at most once per 150 ms.
    function changed() {
      if (timer) return;
      timer = setTimeout(() => { timer = null; refetch(); }, 150);
    }

    async function follow(after) {
      live.textContent = 'live';
      try {
        const res = await api(`${path}/events?follow=true&after=${after}`, {signal});
        if (!res.ok) throw new Error(await errorText(res));
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let newline;
          while ((newline = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + 1);
            if (!line.trim()) continue;
            const event = JSON.parse(line);
            if (event.seq) after = Math.max(after, event.seq);
            changed();
          }
        }
        // The stream ends after the execution's terminal event.
        live.textContent = 'ended';
        clearTimeout(timer);
        timer = null;
        await refetch();
      } catch (e) {
        if (signal.aborted || e instanceof AuthRequired) return;
        live.textContent = 'live updates interrupted; reconnecting in 3 s';
        setTimeout(() => { if (!signal.aborted) follow(after); }, 3000);
      }
    }

    (async () => {
      await refetch();
      if (execution && !signal.aborted) follow(execution.asOfSeq);
    })();
    return {dispose() { controller.abort(); clearTimeout(timer); }};
  }

  function route() {
    if (page) page.dispose();
    const hash = location.hash || '#/';
    const match = /^#\/executions\/([^/?]+)/.exec(hash);
    if (match) {
      page = executionPage(decodeURIComponent(match[1]));
    } else {
      page = listPage(/[?&]state=all\b/.test(hash) ? 'all' : 'active');
    }
  }

  window.addEventListener('hashchange', route);
  route();
})();
