// The dashboard page: renders the three sections that /api/live pushes (Server-Sent Events).
// Every string from the server is put in the DOM as text (textContent, attributes), never as
// markup: customer names are user input.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';

// An element with attributes and children; strings become text nodes.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

function titled(node, text) {
  const title = svg('title');
  title.textContent = text;
  node.append(title);
  return node;
}

function time(ms) {
  return ms == null ? '—' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function ago(ms) {
  if (ms == null) return '—';
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s ago`;
  return `${Math.floor(seconds / 3600)}h ${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}m ago`;
}

const FIELDS = ['orders', 'paid', 'conversion', 'cancelled', 'cancelled_before_payment', 'cancelled_after_payment', 'revenue'];

function statsCells(stats) {
  return FIELDS.map((field) => el('td', { 'data-field': field }, String(stats[field])));
}

// A bar chart of `values` (label, value, text) as SVG.
function barChart(values) {
  const width = 520, height = 140, bottom = 16;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  const max = Math.max(1, ...values.map((v) => v.value));
  const step = width / Math.max(1, values.length);
  values.forEach((v, i) => {
    const h = ((height - bottom) * v.value) / max;
    const bar = svg('rect', { class: 'bar', x: i * step + 1, y: height - bottom - h, width: Math.max(1, step - 2), height: h });
    chart.append(titled(bar, `${v.label}: ${v.text}`));
  });
  if (values.length > 0) {
    const first = svg('text', { class: 'axis', x: 0, y: height - 3 });
    first.textContent = values[0].label;
    const last = svg('text', { class: 'axis', x: width, y: height - 3, 'text-anchor': 'end' });
    last.textContent = values[values.length - 1].label;
    chart.append(first, last);
  }
  return chart;
}

// The lag over the last hour as a line, 0 at the bottom.
function sparkline(history, now) {
  const width = 160, height = 28, hour = 3600 * 1000;
  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'sparkline' });
  const max = Math.max(1, ...history.map(([, lag]) => lag));
  const points = history.map(([at, lag]) => {
    const x = Math.max(0, width - ((now - at) / hour) * width);
    const y = height - 2 - ((height - 4) * lag) / max;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  chart.append(titled(svg('polyline', { class: 'spark', points: points.join(' ') }), `highest lag in the last hour: ${max}`));
  return chart;
}

function renderSales(view) {
  const totals = document.getElementById('totals');
  const body = document.querySelector('#by-model tbody');
  if (!view) {
    totals.replaceChildren(el('p', { class: 'muted' }, 'The projection holds nothing yet.'));
    return;
  }
  document.getElementById('applied').textContent = `projection last applied: ${time(view.last_applied_ms)}`;
  totals.replaceChildren(...view.totals.flatMap((stats) => [
    ['orders', 'orders'], ['paid', 'paid'], ['conversion', 'conversion'],
    ['cancelled_before_payment', 'cancelled before payment'], ['cancelled_after_payment', 'cancelled after payment'],
    ['revenue', `revenue (${stats.currency})`],
  ].map(([field, name]) => el('div', { class: 'card', 'data-total': field, 'data-currency': stats.currency },
    el('div', { class: 'value' }, String(stats[field])), el('div', { class: 'name' }, name)))));
  body.replaceChildren(...view.by_model.map((stats) =>
    el('tr', { 'data-label': stats.label, 'data-currency': stats.currency }, el('td', {}, `${stats.label} (${stats.currency})`), ...statsCells(stats))));
  const currency = view.totals.length > 0 ? view.totals[0].currency : null;
  const days = view.by_day.filter((d) => d.currency === currency).slice(-60);
  document.getElementById('orders-chart').replaceChildren(barChart(days.map((d) => ({ label: d.label, value: d.orders, text: `${d.orders} orders` }))));
  document.getElementById('revenue-chart').replaceChildren(barChart(days.map((d) => ({ label: d.label, value: d.revenue_cents, text: d.revenue }))));
}

function renderEvents(events) {
  document.getElementById('events').replaceChildren(...events.map((e) => {
    const order = e.order || {};
    return el('li', { 'data-order-id': e.order_id, 'data-event': e.event },
      el('span', { class: 'at' }, time(e.at_ms)),
      el('span', { class: 'kind' }, e.event.toLowerCase()),
      el('span', { class: 'order', title: e.order_id }, e.order_id.slice(0, 13)),
      el('span', { class: 'model' }, order.model || ''),
      el('span', { class: 'customer' }, order.customer_name || ''),
      el('span', { class: 'price' }, order.price || ''),
      el('span', { class: 'status muted' }, order.status || ''));
  }));
}

function shadowText(shadow) {
  if (!shadow) return '—';
  const percent = shadow.total > 0 ? Math.floor((100 * shadow.replayed) / shadow.total) : 100;
  const what = shadow.members > 0 ? 'rebuilding' : 'shadow idle';
  return `${what}: ${percent}% (${shadow.replayed}/${shadow.total}), ${shadow.events_per_second.toFixed(1)}/s, ETA ${shadow.eta}`;
}

function renderPipeline(view) {
  if (!view) return;
  const note = document.getElementById('pipeline-note');
  note.textContent = view.error ? `broker unreachable: ${view.error}` : `topic ${view.topic}, sampled every ${view.sample_seconds}s, ${time(view.sampled_at_ms)}`;
  document.querySelector('#departments tbody').replaceChildren(...view.departments.map((d) => {
    const members = d.members.map((m) => `${m.client_id}@${m.host}`).join(', ');
    const applied = d.last_applied_ms != null ? `applied ${ago(d.last_applied_ms)}` : `progress ${ago(d.last_progress_ms)}`;
    return el('tr', { 'data-department': d.department },
      el('td', { 'data-field': 'department' }, d.department),
      el('td', { 'data-field': 'group' }, d.group),
      el('td', { 'data-field': 'state' }, d.state),
      el('td', { 'data-field': 'members', title: members }, String(d.members.length)),
      el('td', { 'data-field': 'lag', class: d.lag > 0 ? 'lagging' : '' }, String(d.lag)),
      el('td', { 'data-field': 'partitions' }, d.partitions.map((p) => `p${p.partition} ${p.lag}`).join(' · ')),
      el('td', { 'data-field': 'rate' }, d.events_per_second.toFixed(1)),
      el('td', { 'data-field': 'eta' }, d.eta),
      el('td', { 'data-field': 'applied' }, applied),
      el('td', { 'data-field': 'dead_lettered' }, String(d.dead_lettered)),
      el('td', { 'data-field': 'history' }, sparkline(d.lag_history, view.sampled_at_ms)),
      el('td', { 'data-field': 'shadow' }, shadowText(d.shadow)));
  }));
}

function connect() {
  const connection = document.getElementById('connection');
  const live = new EventSource('/api/live');
  live.onopen = () => { connection.textContent = 'live'; connection.className = 'connection live'; };
  live.onerror = () => { connection.textContent = 'reconnecting…'; connection.className = 'connection lost'; };
  live.addEventListener('sales', (e) => renderSales(JSON.parse(e.data)));
  live.addEventListener('events', (e) => renderEvents(JSON.parse(e.data)));
  live.addEventListener('pipeline', (e) => renderPipeline(JSON.parse(e.data)));
}

connect();
