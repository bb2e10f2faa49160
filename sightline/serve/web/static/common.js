/* sightline web UI: what every page shares, as window.SL.
 *
 * Safety rule for all scripts: data (run, class and file names, error messages) reaches the
 * DOM only as text (el() and textContent), never parsed as markup. */
'use strict';

(function () {
  const SL = (window.SL = {});

  /* ------------------------------------------------------------------ DOM */

  // el('a', {href: '/x', class: 'y', on: {click: fn}}, 'text', child, [more]): strings become
  // text nodes, so a name like "<b>" shows as those characters.
  SL.el = function (tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (key === 'style') throw new Error('no style attributes: the CSP forbids them; use a class');
      else if (key.startsWith('on')) throw new Error('no on* attributes: pass {on: {event: fn}}');
      else if (value === true) node.setAttribute(key, '');
      else node.setAttribute(key, String(value));
    }
    SL.append(node, children);
    return node;
  };

  SL.append = function (node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  SL.clear = function (node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  };

  SL.$ = (id) => document.getElementById(id);

  SL.setText = function (id, text) {
    const node = SL.$(id);
    if (node) node.textContent = text === null || text === undefined ? '–' : String(text);
  };

  // Show err (an Error or a string) in an error box; null hides it.
  SL.showError = function (box, err) {
    if (typeof box === 'string') box = SL.$(box);
    if (!box) return;
    if (!err) { box.hidden = true; box.textContent = ''; return; }
    box.textContent = typeof err === 'string' ? err : (err.message || String(err));
    box.hidden = false;
  };

  // A run's dataset: a built-in's name, or a folder's path → its last part (the full path
  // goes in a tooltip).
  SL.dataName = (value) => (value ? String(value).replace(/[\\/]+$/, '').split(/[\\/]/).pop() || String(value) : '–');

  SL.param = (name) => new URLSearchParams(window.location.search).get(name);
  SL.runUrl = (name) => '/runs/' + encodeURIComponent(name);
  SL.jobUrl = (id) => '/jobs/' + encodeURIComponent(id);

  /* ------------------------------------------------------------------ API */

  // fetch + JSON. Calls that change something carry the CSRF header the server demands; a
  // failure throws an Error with the server's own message ({"error": ...}), err.status and
  // err.body (the parsed JSON, e.g. the per-file results of a refused prediction).
  SL.api = async function (url, options) {
    const opts = Object.assign({method: 'GET'}, options || {});
    const init = {method: opts.method, headers: {Accept: 'application/json'}, credentials: 'same-origin'};
    if (opts.method !== 'GET' && opts.method !== 'HEAD') init.headers['X-Sightline-Request'] = '1';
    if (opts.json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.json);
    } else if (opts.form !== undefined) {
      init.body = opts.form; // FormData: the browser sets the multipart boundary
    }
    if (opts.signal) init.signal = opts.signal;
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new Error('cannot reach the server (' + (e.message || e) + ')');
    }
    let body = null;
    const text = await response.text();
    if (text) {
      try { body = JSON.parse(text); } catch (e) { body = null; }
    }
    if (!response.ok) {
      let message = body && typeof body.error === 'string' ? body.error : null;
      if (!message && body && body.detail) message = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
      if (!message && response.status === 413) message = 'the upload is too large for this server';
      const err = new Error(message || ('HTTP ' + response.status + ' ' + response.statusText));
      err.status = response.status;
      err.body = body;
      throw err;
    }
    return body;
  };

  /* ------------------------------------------------------------------ formats */

  const isNum = (x) => typeof x === 'number' && isFinite(x);
  SL.isNum = isNum;

  SL.pct = (x, digits) => (isNum(x) ? (x * 100).toFixed(digits === undefined ? 1 : digits) + '%' : '–');
  SL.num = (x, digits) => (isNum(x) ? x.toFixed(digits === undefined ? 4 : digits) : '–');
  SL.int = (x) => (isNum(x) ? Math.round(x).toLocaleString('en-US') : '–');

  // A short number for axes and speeds: 0.000123 → 1.23e-4, 12345 → 12,345.
  SL.short = function (x) {
    if (!isNum(x)) return '–';
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(1);
    if (a >= 100) return Math.round(x).toLocaleString('en-US');
    return String(+x.toPrecision(3));
  };

  // Seconds as m:ss or h:mm:ss (like the command line's progress bar).
  SL.duration = function (seconds) {
    if (!isNum(seconds)) return '–';
    let s = Math.max(0, Math.round(seconds));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const ss = String(s).padStart(2, '0');
    return h ? h + ':' + String(m).padStart(2, '0') + ':' + ss : m + ':' + ss;
  };

  // "2026-11-23T01:38:51+0000" (Python's %z has no colon) or an ISO string → local date/time.
  SL.date = function (value) {
    if (!value) return '–';
    const fixed = String(value).replace(/([+-]\d\d)(\d\d)$/, '$1:$2');
    const d = new Date(fixed);
    if (isNaN(d.getTime())) return String(value);
    const sameYear = d.getFullYear() === new Date().getFullYear(); // the year only when it is not this one
    return d.toLocaleString(undefined, {year: sameYear ? undefined : 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit'});
  };
  SL.timestamp = function (value) {
    if (!value) return 0;
    const t = new Date(String(value).replace(/([+-]\d\d)(\d\d)$/, '$1:$2')).getTime();
    return isNaN(t) ? 0 : t;
  };

  // The metric a run's best epoch was chosen by, named as what it is: "val_accuracy" → "val.
  // accuracy", "loss" → "train loss" (a run without a validation split watches its training
  // twin), and its value as a percentage or a number.
  SL.metricName = (monitor) => {
    const m = String(monitor || '');
    return m.startsWith('val_') ? 'val. ' + m.slice(4).replace(/_/g, ' ') : 'train ' + m.replace(/_/g, ' ');
  };
  SL.metricValue = (monitor, value, digits) => (/loss/.test(monitor || '') ? SL.num(value) : SL.pct(value, digits));
  // Whether a run's best epoch was chosen on its validation split (a run without one, or with
  // one too small to tell epochs apart, watches a training number).
  SL.validated = (run) => /^val_/.test(run.monitor || '');
  // Whether a run has a validation split: the API's has_validation where it says, else its
  // history's val_ columns (the run page has them); null: not known.
  SL.hasValidation = function (run) {
    if (typeof run.has_validation === 'boolean') return run.has_validation;
    const rows = Array.isArray(run.history) ? run.history : [];
    if (!rows.length) return SL.validated(run) ? true : null;
    return rows.some((r) => isNum(r.val_loss) || isNum(r.val_accuracy));
  };
  // "val. accuracy 91.30%", or null when the run has no best value yet.
  SL.bestText = (run, digits) => (SL.isNum(run.best_value) && run.monitor
    ? SL.metricName(run.monitor) + ' ' + SL.metricValue(run.monitor, run.best_value, digits) : null);

  /* ------------------------------------------------------------------ widgets */

  // A run's or a job's state as a coloured badge.
  const BADGES = {
    finished: 'ok', done: 'ok', early_stopped: 'ok', max_steps: 'ok',
    running: 'info', queued: 'info', stopping: 'warn',
    interrupted: 'warn', stopped: 'warn', created: '',
    failed: 'err', broken: 'err',
  };
  SL.badge = function (state, title) {
    const label = state ? String(state).replace(/_/g, ' ') : 'unknown';
    return SL.el('span', {class: 'badge ' + (BADGES[state] || ''), title: title || null}, label);
  };

  // A horizontal bar for a fraction in [0, 1]. Width through the CSSOM, which the CSP allows
  // (it forbids style="" attributes in markup, not element.style).
  SL.bar = function (fraction) {
    const fill = SL.el('span');
    fill.style.width = (Math.max(0, Math.min(1, isNum(fraction) ? fraction : 0)) * 100).toFixed(1) + '%';
    return SL.el('div', {class: 'bar'}, fill);
  };

  // A table whose column headers sort it. columns: [{key, label, value: row → sort key,
  // cell: row → Node|string, class, sortable}]; returns {setRows(rows)}.
  SL.sortableTable = function (table, columns, options) {
    const opts = options || {};
    let rows = [];
    let sortKey = opts.sortKey || null;
    let dir = opts.sortDir || 'asc';

    function compare(a, b) {
      const col = columns.find((c) => c.key === sortKey);
      if (!col) return 0;
      const get = col.value || ((r) => r[col.key]);
      const x = get(a), y = get(b);
      const missingX = x === null || x === undefined, missingY = y === null || y === undefined;
      if (missingX || missingY) return missingX === missingY ? 0 : missingX ? 1 : -1; // blanks last
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
      return dir === 'asc' ? c : -c;
    }

    function render() {
      SL.clear(table);
      const head = SL.el('tr');
      for (const col of columns) {
        let content = col.label;
        if (col.sortable !== false && col.label) {
          content = SL.el('button', {type: 'button', class: 'sort-button', dataset: {key: col.key},
            'data-dir': sortKey === col.key ? dir : null, on: {click: () => sortBy(col.key)}}, col.label);
        }
        head.appendChild(SL.el('th', {class: col.class || null, scope: 'col'}, content));
      }
      table.appendChild(SL.el('thead', null, head));
      const sorted = sortKey ? rows.slice().sort(compare) : rows;
      const body = SL.el('tbody');
      for (const row of sorted) {
        const tr = SL.el('tr', opts.rowAttrs ? opts.rowAttrs(row) : null);
        for (const col of columns) {
          const value = col.cell ? col.cell(row) : row[col.key];
          // data-label: the column's name over the cell where a .stack table shows its rows as
          // cards (narrow screens, style.css).
          tr.appendChild(SL.el('td', {class: col.class || null, 'data-label': col.label || null},
            value === null || value === undefined ? '–' : value));
        }
        body.appendChild(tr);
      }
      table.appendChild(body);
    }

    function sortBy(key) {
      if (sortKey === key) dir = dir === 'asc' ? 'desc' : 'asc';
      else { sortKey = key; dir = 'asc'; }
      render();
    }

    return {setRows(newRows) { rows = newRows; render(); }, render};
  };

  // What was dropped, as [{file, name}]: files, and the files inside dropped folders (their
  // paths kept: "cats/a.png"). The entries are taken while the drop event lasts; a browser
  // without them gives the files.
  function droppedFiles(transfer) {
    const items = [...(transfer.items || [])].filter((i) => i.kind === 'file');
    const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
    if (!entries.length || entries.some((e) => !e)) {
      return Promise.resolve([...(transfer.files || [])].map((f) => ({file: f, name: f.name})));
    }
    const out = [];
    const walk = (entry) => new Promise((resolve) => {
      const name = entry.fullPath.replace(/^\/+/, '');
      if (entry.isFile) {
        entry.file((f) => { out.push({file: f, name}); resolve(); }, () => resolve());
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const more = () => reader.readEntries(async (list) => { // a folder comes in pieces
          if (!list.length) { resolve(); return; }
          for (const e of list) await walk(e);
          more();
        }, () => resolve());
        more();
      } else {
        resolve();
      }
    });
    return entries.reduce((done, e) => done.then(() => walk(e)), Promise.resolve()).then(() => out);
  }

  // One drop zone's behaviour, for every page that takes files (Classify, Classify many,
  // Build): dragging over `zone` marks it (.dragging); a drop calls onFiles([{file, name}])
  // (with options.folders, the files inside dropped folders too), and options.onError(err)
  // when what was dropped cannot be read. Choosing files stays with the zone's own input.
  SL.dropZone = function (zone, onFiles, options) {
    const opts = options || {};
    ['dragenter', 'dragover'].forEach((name) => zone.addEventListener(name, (e) => {
      e.preventDefault(); // else the browser opens the file instead of dropping it here
      zone.classList.add('dragging');
    }));
    ['dragleave', 'drop'].forEach((name) => zone.addEventListener(name, () => zone.classList.remove('dragging')));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      const transfer = e.dataTransfer || {};
      const dropped = opts.folders ? droppedFiles(transfer)
        : Promise.resolve([...(transfer.files || [])].map((f) => ({file: f, name: f.name})));
      dropped.then(onFiles, (err) => { if (opts.onError) opts.onError(err); });
    });
  };

  // <select> of the runs that can classify (a saved model): newest first, `preferred` chosen
  // when it is one of them. Resolves to the runs listed.
  // A selection larger than one request may be (the server's limits, from /api/health) goes
  // in batches, one after the other, each well under the limit: a folder of phone photos works.
  // files: [{file, name}] → {batches: [[...]], tooLarge: [{file, error}]}.
  const BATCH_FILES = 100;
  const BATCH_SHARE = 0.9; // of the byte limit: the multipart framing takes a little too

  SL.uploadBatches = function (files, limits) {
    const budget = Math.max(1, Math.floor((limits.max_upload_bytes || 20 * 1048576) * BATCH_SHARE) - 65536);
    const most = Math.min(BATCH_FILES, limits.max_files || BATCH_FILES);
    const out = [];
    const tooLarge = [];
    let current = [];
    let bytes = 0;
    for (const p of files) {
      if (p.file.size > budget) {
        tooLarge.push({file: p.name, error: `file too large (${(p.file.size / 1048576).toFixed(1)} MB; this server takes at most ${(budget / 1048576).toFixed(0)} MB a request)`});
        continue;
      }
      if (current.length && (bytes + p.file.size > budget || current.length >= most)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(p);
      bytes += p.file.size;
    }
    if (current.length) out.push(current);
    return {batches: out, tooLarge};
  };

  SL.fillRunSelect = async function (select, preferred) {
    const data = await SL.api('/api/runs');
    const usable = (data.runs || []).filter((r) => r.status !== 'broken' && r.status !== 'created' && (r.epochs_done || 0) > 0);
    SL.clear(select);
    for (const r of usable) {
      const acc = SL.isNum(r.test_accuracy) ? ' · test ' + SL.pct(r.test_accuracy) : '';
      select.appendChild(SL.el('option', {value: r.name}, r.name + ' (' + (r.model || '?') + ', ' + SL.dataName(r.dataset) + acc + ')'));
    }
    if (!usable.length) select.appendChild(SL.el('option', {value: ''}, 'no trained run yet'));
    // The page's own choice, else the run the server was told to use (serve --run), else the newest.
    for (const name of [data.default_run, preferred]) {
      if (name && usable.some((r) => r.name === name)) select.value = name;
    }
    select.disabled = usable.length === 0;
    return usable;
  };
})();
