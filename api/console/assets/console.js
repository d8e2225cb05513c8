// The MPS console's script: plain browser JavaScript, no build step, no other host. It reads the
// JSON API through /console/v1/… (the same routes as /v1/…, authorized by the Basic credentials the
// browser already holds for /console) and draws with the DOM and inline SVG. Text goes in with
// textContent only, never as HTML.
'use strict';

(function () {
  const API = '/console/v1';
  const SVG = 'http://www.w3.org/2000/svg';
  const body = document.body;
  const role = body.dataset.role;
  const merchantId = role === 'admin' ? new URLSearchParams(location.search).get('merchant_id') : null;

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path) {
    const res = await fetch(API + path, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
    const json = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, json && json.error ? json.error.code : 'HTTP_' + res.status, json && json.error ? json.error.message : res.statusText);
    return json;
  }

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const totalDeclines = (row) => Object.values(row.declines).reduce((a, b) => a + b, 0);
  const declineText = (row) =>
    Object.entries(row.declines)
      .map(([code, n]) => code + ' ' + n)
      .join(', ');

  /**
   * Bars of `row.payment_amount`, one per row, scaled to the largest; each bar carries its row's
   * key and value (data-key, data-value) and a tooltip with the row's figures.
   */
  function barChart(container, rows, keyOf, labelOf, highlightKey) {
    const width = 720;
    const height = 220;
    const pad = { left: 8, right: 8, top: 24, bottom: 24 };
    const plot = { width: width - pad.left - pad.right, height: height - pad.top - pad.bottom };
    const values = rows.map((r) => Number(r.payment_amount));
    const max = Math.max(0, ...values);
    const slot = plot.width / rows.length;
    const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'payments per period', 'data-max': max.toFixed(2), 'data-plot-height': plot.height });
    chart.appendChild(svg('line', { class: 'axis', x1: pad.left, x2: width - pad.right, y1: pad.top + plot.height, y2: pad.top + plot.height }));
    chart.appendChild(svg('text', { x: pad.left, y: 14 }, 'max ' + max.toFixed(2)));
    rows.forEach((row, i) => {
      const h = max > 0 ? (values[i] / max) * plot.height : 0;
      const bar = svg('rect', {
        class: keyOf(row) === highlightKey ? 'bar today' : 'bar',
        x: (pad.left + i * slot + slot * 0.1).toFixed(2),
        y: (pad.top + plot.height - h).toFixed(2),
        width: (slot * 0.8).toFixed(2),
        height: h.toFixed(2),
        'data-key': keyOf(row),
        'data-value': row.payment_amount,
        'data-count': row.payment_count,
      });
      bar.appendChild(svg('title', {}, labelOf(row) + ': ' + row.payment_amount + ' (' + row.payment_count + ' payments, net ' + row.net_amount + ')'));
      chart.appendChild(bar);
    });
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first && last) {
      chart.appendChild(svg('text', { x: pad.left, y: height - 6 }, labelOf(first)));
      chart.appendChild(svg('text', { x: width - pad.right, y: height - 6, 'text-anchor': 'end' }, labelOf(last)));
    }
    container.replaceChildren(chart);
  }

  function fillTable(table, rows, cells) {
    const tbody = table.querySelector('tbody');
    tbody.replaceChildren(
      ...rows.map((row) => {
        const tr = el('tr');
        for (const [name, value] of cells(row)) tr.appendChild(el('td', value, { 'data-col': name }));
        return tr;
      }),
    );
  }

  function showToday(row) {
    document.getElementById('today-date').textContent = row.date;
    const figures = [
      ['payment_count', 'payments', row.payment_count],
      ['payment_amount', 'payment amount', row.payment_amount],
      ['refund_amount', 'refunds', row.refund_amount + ' (' + row.refund_count + ')'],
      ['recharge_amount', 'till recharges', row.recharge_amount + ' (' + row.recharge_count + ')'],
      ['net_amount', 'net (before fee)', row.net_amount],
      ['distinct_cards', 'distinct cards', row.distinct_cards],
      ['declines', 'declines', totalDeclines(row)],
    ];
    for (const [method, amount] of Object.entries(row.by_method)) figures.push(['by_method.' + method, 'paid by ' + method, amount]);
    for (const [code, n] of Object.entries(row.declines)) figures.push(['declines.' + code, code, n]);
    document.getElementById('today-figures').replaceChildren(
      ...figures.map(([key, label, value]) => {
        const box = el('div', null, { 'data-figure': key });
        box.append(el('dt', label), el('dd', value));
        return box;
      }),
    );
  }

  async function showRecent() {
    const note = document.getElementById('recent-note');
    const scope = merchantId ? '&merchant_id=' + encodeURIComponent(merchantId) : '';
    let list;
    try {
      list = await api(role === 'admin' ? '/transactions?limit=20' + scope : '/merchant/transactions?limit=20');
    } catch (err) {
      if (role === 'admin' && err instanceof ApiError && err.status === 404 && err.code === 'NOT_FOUND') {
        // No admin transaction list on this server (GET /v1/transactions): the platform report stands alone.
        note.textContent = 'This server has no platform-wide transaction list (GET /v1/transactions); the report above covers every merchant.';
        note.hidden = false;
        document.getElementById('tx-table').hidden = true;
        return;
      }
      throw err;
    }
    fillTable(document.getElementById('tx-table'), list.data, (t) => [
      ['created_at', t.created_at],
      ['tx_no', t.tx_no],
      ['type', t.type],
      ['status', t.status],
      ['merchant_id', t.merchant_id || ''],
      ['final_amount', t.final_amount],
      ['payment_method', t.payment_method || ''],
    ]);
  }

  async function showAlerts() {
    const section = document.getElementById('alerts');
    const list = await api('/risk/alerts?status=open&limit=20');
    fillTable(document.getElementById('alerts-table'), list.data, (a) => [
      ['created_at', a.created_at],
      ['rule', a.rule],
      ['severity', a.severity],
      ['subject', a.subject_type + ' ' + a.subject_id],
      ['details', JSON.stringify(a.details)],
    ]);
    section.hidden = false;
  }

  async function main() {
    const report = role === 'admin' ? '/reports/daily' : '/merchant/reports/daily';
    const scope = merchantId ? 'merchant_id=' + encodeURIComponent(merchantId) : '';
    document.getElementById('scope').textContent = role === 'admin' ? (merchantId ? 'Admin · merchant ' + merchantId : 'Admin · whole platform') : 'Merchant';
    // The API's defaults: the 30 days ending today, and today's hours, in SETTLEMENT_TZ.
    const [days, hours] = await Promise.all([api(report + (scope ? '?' + scope : '')), api(report + '?granularity=hour' + (scope ? '&' + scope : ''))]);
    if (role === 'merchant') document.getElementById('scope').textContent = 'Merchant ' + days.merchant_id;
    document.getElementById('time-zone').textContent = days.time_zone;
    const today = days.data[days.data.length - 1];
    barChart(document.getElementById('days-chart'), days.data, (r) => r.date, (r) => r.date, today.date);
    fillTable(document.getElementById('days-table'), days.data.slice().reverse(), (r) => [
      ['date', r.date],
      ['payment_count', r.payment_count],
      ['payment_amount', r.payment_amount],
      ['refund_count', r.refund_count],
      ['refund_amount', r.refund_amount],
      ['recharge_count', r.recharge_count],
      ['recharge_amount', r.recharge_amount],
      ['net_amount', r.net_amount],
      ['distinct_cards', r.distinct_cards],
      ['declines', declineText(r)],
    ]);
    showToday(today);
    const label = (r) => String(r.hour).padStart(2, '0') + ':00';
    barChart(document.getElementById('hours-chart'), hours.data, (r) => String(r.hour), label, null);
    fillTable(document.getElementById('hours-table'), hours.data, (r) => [
      ['hour', label(r)],
      ['payment_count', r.payment_count],
      ['payment_amount', r.payment_amount],
      ['refund_amount', r.refund_amount],
      ['net_amount', r.net_amount],
      ['distinct_cards', r.distinct_cards],
      ['declines', declineText(r)],
    ]);
    await Promise.all([showRecent(), role === 'admin' ? showAlerts() : null]);
  }

  const status = document.getElementById('status');
  main().then(
    () => {
      status.textContent = 'Updated ' + new Date().toLocaleTimeString();
      body.dataset.ready = 'true';
    },
    (err) => {
      status.textContent = 'Could not load the console: ' + (err && err.message ? err.message : String(err));
      status.classList.add('error');
      body.dataset.ready = 'error';
    },
  );
})();
