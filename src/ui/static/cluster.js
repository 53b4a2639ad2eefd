// The cluster page: members with each one's own health and status, the
// leader, Raft term and index, database size, alarms, and charts fed by
// this member's /metrics. Only reads: status, member list, alarm GET,
// health and metrics scrapes.
import { call, get, el, formatBytes } from './api.js';
import { parseMetrics, total, Sparkline, formatNumber } from './metrics.js';

const kStatusEveryMs = 5000;
const kMetricsEveryMs = 2000;

// Each chart: where its numbers come from, in order of preference; the
// first metric the member exports wins, and a chart with none says so.
const kCharts = [
  {
    id: 'chart-requests', title: 'requests/s', unit: '/s',
    sources: [
      { metric: 'grpc_server_handled_total', note: 'gRPC calls handled', rate: true },
      { metric: 'etcd_server_proposals_applied_total', note: 'applied entries (gRPC call counts need --metrics=extensive)', rate: true },
    ],
  },
  {
    id: 'chart-leader-changes', title: 'leader changes', unit: '',
    sources: [{ metric: 'etcd_server_leader_changes_seen_total', note: 'seen by this member', rate: false }],
  },
  {
    id: 'chart-fsync', title: 'WAL fsync latency', unit: ' ms',
    sources: [{ metric: 'etcd_disk_wal_fsync_duration_seconds', note: 'mean per interval', histogramMeanMs: true }],
  },
];

// Reads one chart's value from a scrape, given the previous scrape (for
// rates and interval means). Returns {value, note} or null if unexported.
function chartValue(chart, now, before, seconds) {
  for (const source of chart.sources) {
    if (source.histogramMeanMs) {
      const sum = total(now, source.metric + '_sum');
      const count = total(now, source.metric + '_count');
      if (sum === null || count === null) continue;
      if (!before) return { value: null, note: source.note };
      const dCount = count - (total(before, source.metric + '_count') ?? 0);
      const dSum = sum - (total(before, source.metric + '_sum') ?? 0);
      return { value: dCount > 0 ? (dSum / dCount) * 1000 : 0, note: source.note };
    }
    const value = total(now, source.metric);
    if (value === null) continue;
    if (!source.rate) return { value, note: source.note };
    if (!before || seconds <= 0) return { value: null, note: source.note };
    const previous = total(before, source.metric) ?? value;
    return { value: Math.max(0, value - previous) / seconds, note: source.note };
  }
  return null;
}

function memberRow(member, local) {
  const id = BigInt(member.ID).toString(16);
  const cells = {
    health: el('td', { class: 'health' }, '…'),
    leader: el('td', {}),
    term: el('td', { class: 'mono' }),
    index: el('td', { class: 'mono' }),
    db: el('td', { class: 'mono' }),
    version: el('td', { class: 'mono' }),
  };
  const row = el('tr', { 'data-member': id },
    el('td', { class: 'mono' }, id),
    el('td', {}, member.name || '(not started)', local ? el('span', { class: 'muted' }, ' (this console)') : null,
      member.isLearner ? el('span', { class: 'badge' }, 'learner') : null),
    el('td', { class: 'mono' }, (member.clientURLs || []).join(', ')),
    cells.health, cells.leader, cells.term, cells.index, cells.db, cells.version);
  return { row, cells, id };
}

// Asks one member (by its own client URL, or this page's origin for the
// member serving the console) for its health and status.
async function refreshMember(member, entry, local, leaderId) {
  const base = local ? '' : (member.clientURLs || [])[0];
  if (base === undefined) {
    entry.cells.health.textContent = 'no client URL';
    return;
  }
  try {
    const health = await get('/health', { base });
    const healthy = health.status === 200 && health.text.includes('"true"');
    entry.cells.health.className = healthy ? 'health ok' : 'health error';
    entry.cells.health.textContent = healthy ? 'healthy' : 'unhealthy';
  } catch {
    entry.cells.health.className = 'health error';
    entry.cells.health.textContent = 'unreachable';
  }
  try {
    const status = local ? await call('/v3/maintenance/status', {}) : await call('/v3/maintenance/status', {}, { base });
    entry.cells.term.textContent = status.raftTerm || '0';
    entry.cells.index.textContent = status.raftIndex || '0';
    entry.cells.db.textContent = formatBytes(status.dbSize || 0);
    entry.cells.version.textContent = status.version || '';
  } catch (err) {
    entry.cells.term.textContent = '–';
    entry.cells.index.textContent = '–';
    entry.cells.db.textContent = err.message;
  }
  entry.cells.leader.replaceChildren(entry.id === leaderId ? el('span', { class: 'badge leader' }, 'leader') : '');
}

export function mount(main) {
  const summary = el('dl', { class: 'fields', id: 'cluster-summary' });
  const members = el('tbody', { id: 'members' });
  const alarms = el('div', { id: 'alarms' });
  const error = el('p', { class: 'error', id: 'cluster-error' });
  const charts = kCharts.map((chart) => {
    const canvas = el('canvas', { width: 260, height: 80, id: chart.id });
    const now = el('span', { class: 'now' }, '–');
    const note = el('div', { class: 'muted note' }, '');
    return { chart, line: new Sparkline(canvas, { unit: chart.unit }), now, note,
      node: el('div', { class: 'chart' }, el('div', {}, el('strong', {}, chart.title), ' ', now), canvas, note) };
  });
  main.replaceChildren(el('div', { class: 'card' },
    el('h2', {}, 'Cluster'), summary, error,
    el('h3', {}, 'Members'),
    el('table', {}, el('thead', {}, el('tr', {},
      ['ID', 'name', 'client URLs', 'health', 'role', 'raft term', 'raft index', 'db size', 'version'].map((h) => el('th', {}, h)))), members),
    el('h3', {}, 'Alarms'), alarms,
    el('h3', {}, 'This member, live (from /metrics)'),
    el('div', { class: 'charts' }, charts.map((c) => c.node))));

  let stopped = false;
  const timers = [];
  let entries = new Map();

  const refreshStatus = async () => {
    try {
      const [status, list, alarmReply] = await Promise.all([
        call('/v3/maintenance/status', {}),
        call('/v3/cluster/member/list', {}),
        call('/v3/maintenance/alarm', { action: 'GET' }),
      ]);
      if (stopped) return;
      error.textContent = '';
      const localId = BigInt(status.header.member_id).toString(16);
      const leaderId = status.leader ? BigInt(status.leader).toString(16) : null;
      const field = (name, value, id) => [el('dt', {}, name), el('dd', { id }, value)];
      summary.replaceChildren(...[
        field('cluster ID', BigInt(status.header.cluster_id).toString(16), 'cluster-id'),
        field('leader', leaderId ?? 'none (no leader known)', 'cluster-leader'),
        field('raft term', status.raftTerm || '0', 'cluster-term'),
        field('raft index', status.raftIndex || '0', 'cluster-index'),
        field('revision', status.header.revision || '0', 'cluster-revision'),
        field('db size', `${formatBytes(status.dbSize || 0)}` + (status.dbSizeInUse ? ` (${formatBytes(status.dbSizeInUse)} in use)` : ''), 'cluster-db-size'),
        field('server version', status.version || '', 'cluster-version'),
      ].flat());
      const ids = (list.members || []).map((m) => BigInt(m.ID).toString(16)).join(',');
      if ([...entries.keys()].join(',') !== ids) {
        entries = new Map();
        members.replaceChildren();
        for (const member of list.members || []) {
          const entry = memberRow(member, BigInt(member.ID).toString(16) === localId);
          entries.set(entry.id, entry);
          members.append(entry.row);
        }
      }
      for (const member of list.members || []) {
        const id = BigInt(member.ID).toString(16);
        refreshMember(member, entries.get(id), id === localId, leaderId);
      }
      const raised = alarmReply.alarms || [];
      alarms.replaceChildren(raised.length === 0
        ? el('p', { class: 'ok', id: 'no-alarms' }, 'none')
        : el('ul', {}, raised.map((a) => el('li', { class: 'error' }, `${a.alarm || 'NONE'} on member ${BigInt(a.memberID).toString(16)}`))));
    } catch (err) {
      if (!stopped) error.textContent = err.message;
    }
  };

  let previous = null;
  let previousAt = 0;
  const refreshMetrics = async () => {
    let scrape;
    try {
      scrape = parseMetrics((await get('/metrics')).text);
    } catch {
      return;
    }
    if (stopped) return;
    const at = performance.now();
    const seconds = previous ? (at - previousAt) / 1000 : 0;
    for (const c of charts) {
      const result = chartValue(c.chart, scrape, previous, seconds);
      if (result === null) {
        c.note.textContent = 'not exported by this member';
        c.node.classList.add('unavailable');
        continue;
      }
      c.note.textContent = result.note;
      c.line.push(result.value);
      c.now.textContent = formatNumber(result.value) + c.chart.unit;
    }
    previous = scrape;
    previousAt = at;
  };

  refreshStatus();
  refreshMetrics();
  timers.push(setInterval(refreshStatus, kStatusEveryMs), setInterval(refreshMetrics, kMetricsEveryMs));
  return () => {
    stopped = true;
    timers.forEach(clearInterval);
  };
}
