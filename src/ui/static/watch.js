// The watch page: one streaming /v3/watch call on a prefix; every event is
// a row of the table, newest first, as it arrives. With a start revision
// the server first replays the prefix's history from that revision (until
// compaction: a compacted start cancels the watch, and the page says from
// which revision history is still kept).
import { b64, unb64, stream, el, prefixEnd, displayBytes, textToBytes, bytesToText, keyToHash } from './api.js';

const kMaxRows = 500;  // older rows are dropped: a busy prefix must not grow the page without bound

// Leaving the page aborts the stream, so the server's watcher goes with it.
export function mount(main) {
  const prefix = el('input', { id: 'watch-prefix', placeholder: 'prefix (empty: every key)', size: 32 });
  const from = el('input', {
    id: 'watch-from', placeholder: 'from revision (empty: now)', size: 22, inputmode: 'numeric',
    title: 'replay the history of the prefix from this revision, then go on live',
  });
  const start = el('button', { class: 'primary', id: 'watch-start' }, 'Watch');
  const stop = el('button', { id: 'watch-stop', disabled: true }, 'Stop');
  const status = el('span', { class: 'muted', id: 'watch-status' }, 'not watching');
  const rows = el('tbody', { id: 'watch-rows' });
  let controller = null;

  const run = async () => {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    rows.replaceChildren();
    const key = textToBytes(prefix.value);
    const request = {
      create_request: {
        key: b64(key === '' ? '\0' : key),
        range_end: b64(prefixEnd(key)),
      },
    };
    const startRevision = from.value.trim();
    if (startRevision !== '') {
      if (!/^[1-9][0-9]*$/.test(startRevision)) {
        status.className = 'error';
        status.textContent = 'the start revision must be a whole number from 1 up';
        return;
      }
      request.create_request.start_revision = startRevision;  // int64: a string in JSON
    }
    let cancelled = false;  // the server's reason stays on screen
    start.disabled = true;
    stop.disabled = false;
    status.className = 'muted';
    status.textContent = 'connecting…';
    try {
      for await (const result of stream('/v3/watch', request, { signal: mine.signal })) {
        if (result.created) {
          status.className = 'ok';
          const first = startRevision !== '' ? startRevision : String(Number(result.header.revision) + 1);
          status.textContent = `watching ${key === '' ? 'every key' : displayBytes(key) + '*'} from revision ${first}`;
        }
        if (result.canceled) {
          cancelled = true;
          status.className = 'error';
          status.textContent = result.compact_revision && result.compact_revision !== '0'
            ? `revision ${startRevision} is compacted: history is kept from revision ${result.compact_revision} on`
            : 'watch cancelled by the server: ' + (result.cancel_reason || 'no reason given');
        }
        for (const event of result.events || []) addRow(event);
      }
      if (!mine.signal.aborted && !cancelled) {
        status.className = 'warn';
        status.textContent = 'the server ended the watch';
      }
    } catch (err) {
      if (!mine.signal.aborted) {
        status.className = 'error';
        status.textContent = err.message;
      }
    } finally {
      if (controller === mine) {
        start.disabled = false;
        stop.disabled = true;
      }
    }
  };

  const addRow = (event) => {
    const type = event.type || 'PUT';
    const kv = event.kv;
    const key = unb64(kv.key);
    const value = unb64(kv.value);
    const shown = type === 'DELETE' ? '' : bytesToText(value) ?? `(${value.length} bytes binary)`;
    rows.prepend(el('tr', { 'data-type': type },
      el('td', { class: 'mono' }, new Date().toLocaleTimeString()),
      el('td', {}, el('span', { class: 'badge ' + type.toLowerCase() }, type)),
      el('td', { class: 'mono' }, type === 'DELETE' ? displayBytes(key) : el('a', { href: '#/key/' + keyToHash(key) }, displayBytes(key))),
      el('td', { class: 'mono watch-value' }, shown.slice(0, 200)),
      el('td', { class: 'mono' }, kv.mod_revision),
      el('td', { class: 'mono' }, kv.version || '0')));
    while (rows.children.length > kMaxRows) rows.lastChild.remove();
  };

  start.addEventListener('click', run);
  prefix.addEventListener('keydown', (e) => { if (e.key === 'Enter') run(); });
  from.addEventListener('keydown', (e) => { if (e.key === 'Enter') run(); });
  stop.addEventListener('click', () => {
    controller?.abort();
    status.className = 'muted';
    status.textContent = 'stopped';
    start.disabled = false;
    stop.disabled = true;
  });

  main.replaceChildren(el('div', { class: 'card' },
    el('h2', {}, 'Watch'),
    el('div', { class: 'toolbar' }, prefix, from, start, stop, status),
    el('table', {},
      el('thead', {}, el('tr', {}, ['time', 'event', 'key', 'value', 'mod revision', 'version'].map((h) => el('th', {}, h)))),
      rows)));
  return () => controller?.abort();
}
