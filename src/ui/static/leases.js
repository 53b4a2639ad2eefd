// The leases page: every lease with its remaining and granted TTL and the
// keys attached. The lease list is IDs only; TTLs are asked for one page
// of leases at a time.
import { call, el, leaseHex, unb64, displayBytes, keyToHash } from './api.js';

const kLeasesPerPage = 50;
const kKeysShown = 5;

export function mount(main) {
  const rows = el('tbody', { id: 'lease-rows' });
  const status = el('p', { class: 'muted', id: 'lease-status' });
  const more = el('button', { class: 'link', hidden: true }, 'more…');
  let ids = [];
  let shown = 0;
  let stopped = false;

  const showPage = async () => {
    const page = ids.slice(shown, shown + kLeasesPerPage);
    shown += page.length;
    more.hidden = shown >= ids.length;
    for (const id of page) {
      const row = el('tr', { 'data-lease': leaseHex(id) }, el('td', { class: 'mono' }, leaseHex(id)));
      rows.append(row);
      try {
        const ttl = await call('/v3/lease/timetolive', { ID: id, keys: true });
        if (stopped) return;
        const keys = (ttl.keys || []).map(unb64);
        const left = Number(ttl.TTL || 0);
        row.append(
          el('td', { class: 'mono ' + (left > 0 ? '' : 'warn') }, left > 0 ? `${left} s` : 'expired'),
          el('td', { class: 'mono' }, `${ttl.grantedTTL || 0} s`),
          el('td', { class: 'mono' }, String(keys.length)),
          el('td', { class: 'mono' }, keys.slice(0, kKeysShown).map((k) => [el('a', { href: '#/key/' + keyToHash(k) }, displayBytes(k)), ' ']),
            keys.length > kKeysShown ? `… and ${keys.length - kKeysShown} more` : ''));
      } catch (err) {
        row.append(el('td', { class: 'error', colspan: 4 }, err.message));
      }
    }
  };

  const load = async () => {
    rows.replaceChildren();
    shown = 0;
    const reply = await call('/v3/lease/leases', {});
    ids = (reply.leases || []).map((l) => l.ID);
    status.textContent = `${ids.length} lease${ids.length === 1 ? '' : 's'}`;
    await showPage();
  };

  more.addEventListener('click', () => showPage().catch((err) => { status.textContent = err.message; }));
  main.replaceChildren(el('div', { class: 'card' },
    el('h2', {}, 'Leases'),
    el('div', { class: 'toolbar' }, el('button', { id: 'lease-refresh', onclick: () => load().catch((err) => { status.textContent = err.message; }) }, 'Refresh'), status),
    el('table', {}, el('thead', {}, el('tr', {}, ['ID', 'TTL left', 'granted TTL', 'keys', 'attached keys'].map((h) => el('th', {}, h)))), rows),
    more));
  load().catch((err) => { status.className = 'error'; status.textContent = err.message; });
  return () => { stopped = true; };
}
