// The keys page: a tree of the key space split on '/', loaded one level and
// one page at a time, beside the selected key (value, metadata, history,
// edit, delete). Never asks for a whole range: every listing is keys_only
// with a limit, every count is count_only.
import {
  b64, unb64, call, el, prefixEnd, displayBytes, bytesToText, textToBytes, hexDump,
  bytesToHex, hexToBytes, base64ToBytes, keyToHash, hashToKey, leaseHex, Code,
} from './api.js';

const kChildrenPerPage = 50;  // entries shown per "more" click
const kKeysPerRequest = 200;   // most keys one listing request asks for
const kHistoryPerPage = 10;

// The tree outlives page switches, so the user's expansions are kept.
// Node: {prefix, name, kind: 'dir'|'key'|'root', open, children, next, count}.
const root = { kind: 'root', prefix: '', name: '', open: true, children: null, next: '', count: null };
let selectedKey = null;

// Lists the next `want` entries of the level below `prefix`, starting at
// key `start`: the keys directly under it and its sub-directories (the
// text up to the next '/'). Keys inside a sub-directory already listed are
// skipped by restarting the scan after that directory's last possible key,
// so a directory of a million keys costs one request, not a million keys.
// Returns the entries and the key to continue from (null at the end).
//
// Every range reply counts all the keys of its range, even with a limit
// (etcd's RangeResponse.count), and the server walks them to do it. So a
// request does not reach to the end of the level straight away: it first
// asks a window of the keys sharing all but the last byte of the cursor,
// then all but two, ... (kNarrowWindows of them), and only then the rest of
// the level. Siblings usually share a long prefix (/reg/ns0001/ and
// /reg/ns0002/), so the next one is found in a small window; an empty
// window costs one seek. Every key before the cursor is always accounted
// for: a window that came back without `more` is wholly seen.
const kNarrowWindows = 4;

function windowEnd(prefix, cursor, end, narrowing) {
  const cut = cursor.length - narrowing;
  if (narrowing > kNarrowWindows || cut <= prefix.length) return end;
  const candidate = prefixEnd(cursor.slice(0, cut));
  return candidate === '\0' || (end !== '\0' && candidate > end) ? end : candidate;
}

async function listLevel(prefix, start, want) {
  const end = prefixEnd(prefix);
  const entries = [];
  let cursor = start;
  let narrowing = 1;  // the cursor's bytes the next window lets vary
  while (cursor !== null && entries.length < want) {
    if (end !== '\0' && cursor >= end) return { entries, next: null };
    const windowTo = windowEnd(prefix, cursor, end, narrowing);
    const reply = await call('/v3/kv/range', {
      key: b64(cursor === '' ? '\0' : cursor), range_end: b64(windowTo), keys_only: true,
      // One more key than entries still wanted tells whether more follow; a
      // level of many sub-directories then costs about `want` keys per
      // request (each directory skipped), not a fixed large batch.
      limit: Math.min(kKeysPerRequest, want - entries.length + 1),
    });
    const kvs = reply.kvs || [];
    let skipTo = null;  // keys before this are inside the last directory listed
    let stoppedAt = null;
    for (const kv of kvs) {
      const key = unb64(kv.key);
      if (skipTo !== null && (skipTo === '\0' || key < skipTo)) continue;
      if (entries.length >= want) {
        stoppedAt = key;
        break;
      }
      const rest = key.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        entries.push({ kind: 'key', prefix: key, name: rest });
      } else {
        const dir = prefix + rest.slice(0, slash + 1);
        entries.push({ kind: 'dir', prefix: dir, name: rest.slice(0, slash + 1), open: false, children: null, next: dir, count: null });
        skipTo = prefixEnd(dir);
      }
    }
    if (stoppedAt !== null) return { entries, next: stoppedAt };
    if (skipTo === '\0') return { entries, next: null };
    if (reply.more) {
      const after = unb64(kvs[kvs.length - 1].key) + '\0';
      cursor = skipTo !== null && skipTo > after ? skipTo : after;
      narrowing = 1;
      continue;
    }
    // The window is exhausted: everything before its end is seen.
    if (windowTo === end) return { entries, next: null };
    cursor = skipTo !== null && skipTo > windowTo ? skipTo : windowTo;
    narrowing = kvs.length === 0 ? narrowing + 1 : 1;
  }
  return { entries, next: cursor };
}

async function countUnder(prefix) {
  const reply = await call('/v3/kv/range', {
    key: b64(prefix === '' ? '\0' : prefix), range_end: b64(prefixEnd(prefix)), count_only: true,
  });
  return Number(reply.count || 0);
}

async function loadMore(node) {
  if (node.loading) return;  // a second click while the page is on its way
  node.loading = true;
  let listed;
  try {
    listed = await listLevel(node.prefix, node.next, kChildrenPerPage);
  } finally {
    node.loading = false;
  }
  const { entries, next } = listed;
  node.children = (node.children || []).concat(entries);
  node.next = next;
  // Counts after the listing is shown, one directory at a time: a large
  // level must not start a burst of requests.
  (async () => {
    for (const entry of entries) {
      if (entry.kind !== 'dir') continue;
      try {
        entry.count = await countUnder(entry.prefix);
      } catch {
        entry.count = '?';
      }
      const label = document.querySelector(`[data-prefix="${b64(entry.prefix)}"] > .node .count`);
      if (label) label.textContent = String(entry.count);
    }
  })();
}

function renderNode(node, rerender) {
  if (node.kind === 'key') {
    return el('li', { 'data-key': b64(node.prefix) },
      el('span', {
        class: 'node' + (node.prefix === selectedKey ? ' selected' : ''),
        title: displayBytes(node.prefix),
        onclick: () => { location.hash = '#/key/' + keyToHash(node.prefix); },
      }, el('span', { class: 'twisty' }, ' '), node.name === '' ? '(this key)' : displayBytes(node.name)));
  }
  const label = node.kind === 'root' ? 'all keys' : displayBytes(node.name);
  const item = el('li', { 'data-prefix': b64(node.prefix) },
    el('span', {
      class: 'node dir',
      onclick: async () => {
        node.open = !node.open;
        if (node.open && node.children === null) await loadMore(node);
        rerender();
      },
    }, el('span', { class: 'twisty' }, node.open ? '▾' : '▸'), label,
    el('span', { class: 'count' }, node.count === null ? '' : String(node.count))));
  if (node.open && node.children !== null) {
    const list = el('ul', { class: 'tree' }, node.children.map((child) => renderNode(child, rerender)));
    if (node.next !== null) {
      list.append(el('li', {}, el('button', {
        class: 'link more',
        onclick: async () => { await loadMore(node); rerender(); },
      }, 'more…')));
    }
    if (node.children.length === 0) list.append(el('li', { class: 'muted' }, '(empty)'));
    item.append(list);
  }
  return item;
}

// Forgets the loaded levels along `key`'s path so the next render lists
// them again (after a put or delete changed them).
function invalidatePath(key) {
  let node = root;
  root.count = null;
  for (;;) {
    if (node.children === null) return;
    const child = node.children.find((c) => c.kind === 'dir' && key.startsWith(c.prefix));
    node.children = null;
    node.next = node.prefix;
    if (!child) return;
    node = child;
  }
}

async function reloadOpen(node) {
  if (node.open && node.children === null) {
    await loadMore(node);
    for (const child of node.children) if (child.kind === 'dir') child.open = false;
  }
}

async function reopenPath(key) {
  let node = root;
  await reloadOpen(node);
  for (;;) {
    const child = (node.children || []).find((c) => c.kind === 'dir' && key.startsWith(c.prefix));
    if (!child) return;
    child.open = true;
    await reloadOpen(child);
    node = child;
  }
}

function valueView(bytes) {
  const text = bytesToText(bytes);
  const modes = [];
  if (text !== null) {
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null) modes.push(['json', JSON.stringify(parsed, null, 2)]);
    } catch { /* not JSON */ }
    modes.push(['text', text]);
  }
  modes.push(['hex', hexDump(bytes)]);
  const pre = el('pre', { class: 'value', id: 'key-value' });
  const select = el('select', { id: 'value-mode' }, modes.map(([mode]) => el('option', { value: mode }, mode)));
  const show = () => {
    const [mode, shown] = modes.find(([m]) => m === select.value);
    pre.textContent = shown;
    pre.dataset.mode = mode;
  };
  select.addEventListener('change', show);
  show();
  return el('div', {}, el('div', { class: 'toolbar' }, el('span', { class: 'muted' }, 'shown as'), select,
    el('span', { class: 'muted' }, `${bytes.length} bytes`)), pre);
}

function fields(kv, ttl) {
  const row = (name, value, id) => [el('dt', {}, name), el('dd', { id }, value)];
  return el('dl', { class: 'fields' },
    row('version', kv.version || '0', 'key-version'),
    row('create revision', kv.create_revision || '0', 'key-create-revision'),
    row('mod revision', kv.mod_revision || '0', 'key-mod-revision'),
    row('lease', kv.lease ? `${leaseHex(kv.lease)} (${ttl})` : 'none', 'key-lease'));
}

async function leaseTtl(id) {
  try {
    const reply = await call('/v3/lease/timetolive', { ID: id });
    return reply.TTL && Number(reply.TTL) > 0 ? `${reply.TTL} s left of ${reply.grantedTTL} s` : 'expired';
  } catch (err) {
    return err.message;
  }
}

// Walks back from `kv` one version at a time (the range at the revision
// before each one's mod revision), until the key's creation, a gap (it did
// not exist then) or the compaction point.
async function historyFrom(key, beforeRevision, into, status) {
  let revision = beforeRevision;
  for (let n = 0; n < kHistoryPerPage && revision > 0; n++) {
    let reply;
    try {
      reply = await call('/v3/kv/range', { key: b64(key), revision: String(revision) });
    } catch (err) {
      status.textContent = err.code === Code.OutOfRange ? `older revisions are compacted (${err.message})` : err.message;
      return 0;
    }
    const kv = (reply.kvs || [])[0];
    if (!kv) {
      status.textContent = `the key did not exist at revision ${revision}`;
      return 0;
    }
    const value = unb64(kv.value);
    const text = bytesToText(value);
    into.append(el('tr', {},
      el('td', { class: 'mono' }, kv.mod_revision), el('td', { class: 'mono' }, kv.version),
      el('td', { class: 'mono' }, text !== null ? text.slice(0, 200) : `(${value.length} bytes binary)`)));
    if (kv.version === '1') {
      status.textContent = `created at revision ${kv.create_revision}`;
      return 0;
    }
    revision = Number(kv.mod_revision) - 1;
  }
  return revision;
}

// Shows `key` in `panel`; `notice` ({className, text}) is a message to show
// with it (the outcome of the action that led here).
async function renderKey(panel, key, onChanged, notice = null) {
  panel.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  const reply = await call('/v3/kv/range', { key: b64(key) });
  const kv = (reply.kvs || [])[0];
  const title = el('h2', { class: 'mono', id: 'key-name' }, displayBytes(key));
  if (!kv) {
    panel.replaceChildren(title, el('p', { class: 'warn', id: 'key-missing' },
      `No such key at revision ${reply.header.revision} (deleted?).`));
    return;
  }
  const value = unb64(kv.value);
  const message = el('p', { id: 'key-message', class: notice?.className }, notice?.text ?? '');
  const ttl = kv.lease ? await leaseTtl(kv.lease) : '';
  const body = el('div', {}, valueView(value));

  const edit = () => {
    // The value is edited as text when it is text, else as hex; hex and
    // base64 are offered for any value. Switching format re-encodes what is
    // in the editor (refused while it does not parse), and a save sends the
    // bytes parsed from the chosen format, never a lossy text rendering.
    const formats = {
      text: { show: (bytes) => bytesToText(bytes), parse: textToBytes },
      hex: { show: bytesToHex, parse: hexToBytes },
      base64: { show: b64, parse: base64ToBytes },
    };
    const choices = (bytesToText(value) !== null ? ['text'] : []).concat(['hex', 'base64']);
    const format = el('select', { id: 'edit-format' }, choices.map((name) => el('option', { value: name }, name)));
    const area = el('textarea', { id: 'edit-value', spellcheck: 'false' });
    let current = choices[0];
    area.value = formats[current].show(value);
    area.dataset.format = current;
    format.addEventListener('change', () => {
      const wanted = format.value;
      let bytes;
      try {
        bytes = formats[current].parse(area.value);
      } catch (err) {
        format.value = current;
        message.className = 'error';
        message.textContent = `Cannot switch to ${wanted}: ${err.message}`;
        return;
      }
      const shown = formats[wanted].show(bytes);
      if (shown === null) {  // text asked for bytes that are not text
        format.value = current;
        message.className = 'error';
        message.textContent = 'Cannot show these bytes as text (not UTF-8, or control characters); edit them as hex or base64.';
        return;
      }
      current = wanted;
      area.value = shown;
      area.dataset.format = current;
      message.className = '';
      message.textContent = '';
    });
    const save = async () => {
      let bytes;
      try {
        bytes = formats[current].parse(area.value);
      } catch (err) {
        message.className = 'error';
        message.textContent = `Not saved: ${err.message}`;
        return;
      }
      // Compare-and-swap: the put applies only if nobody changed the key
      // since it was opened (its mod revision is still the one shown).
      const put = { key: b64(key), value: b64(bytes) };
      if (kv.lease) put.ignore_lease = true;  // keep the key's lease
      const result = await call('/v3/kv/txn', {
        compare: [{ target: 'MOD', key: b64(key), result: 'EQUAL', mod_revision: kv.mod_revision }],
        success: [{ request_put: put }],
        failure: [{ request_range: { key: b64(key) } }],
      });
      if (result.succeeded) {
        // Shown again from the server, so a next edit compares against the
        // new mod revision. The tree is unchanged: the key existed.
        await renderKey(panel, key, onChanged, { className: 'ok', text: `Saved at revision ${result.header.revision}.` });
        return;
      }
      const now = ((result.responses || [])[0]?.response_range?.kvs || [])[0];
      message.className = 'error';
      message.textContent = now
        ? `Not saved: the key changed since you opened it (mod revision ${kv.mod_revision}, now ${now.mod_revision}). Reload to see the current value; your text is still in the editor.`
        : `Not saved: the key was deleted since you opened it (mod revision ${kv.mod_revision}).`;
      message.dataset.conflict = 'true';
    };
    body.replaceChildren(
      el('div', { class: 'toolbar' }, el('span', { class: 'muted' }, 'edit as'), format),
      area, el('div', { class: 'toolbar' },
        el('button', { class: 'primary', id: 'save-btn', onclick: () => save().catch(showError) }, 'Save'),
        el('button', { id: 'cancel-btn', onclick: () => renderKey(panel, key, onChanged) }, 'Cancel'),
        el('span', { class: 'muted' }, `saves only if the key is still at mod revision ${kv.mod_revision}`)));
  };

  const showError = (err) => {
    message.className = 'error';
    message.textContent = err.message;
  };

  const confirmDelete = () => {
    const bar = el('div', { class: 'confirm', id: 'delete-confirm' },
      `Delete ${displayBytes(key)}? This cannot be undone. `,
      el('button', {
        class: 'danger', id: 'delete-confirm-btn',
        onclick: async () => {
          try {
            const result = await call('/v3/kv/deleterange', { key: b64(key) });
            bar.remove();
            for (const button of actions.querySelectorAll('button')) button.disabled = true;
            body.replaceChildren();
            message.className = 'ok';
            message.textContent = `Deleted (${result.deleted || 0} key) at revision ${result.header.revision}.`;
            onChanged(key);
          } catch (err) {
            showError(err);
          }
        },
      }, 'Delete'),
      ' ', el('button', { onclick: () => bar.remove() }, 'Cancel'));
    message.after(bar);
  };

  const historyRows = el('tbody', {});
  const historyStatus = el('p', { class: 'muted', id: 'history-status' });
  const history = el('div', { id: 'history' });
  const showHistory = async () => {
    historyRows.replaceChildren();
    historyStatus.textContent = '';
    history.replaceChildren(el('h3', {}, 'History'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'mod revision'), el('th', {}, 'version'), el('th', {}, 'value'))), historyRows),
      historyStatus);
    historyRows.append(el('tr', {}, el('td', { class: 'mono' }, kv.mod_revision), el('td', { class: 'mono' }, kv.version),
      el('td', { class: 'mono' }, (bytesToText(value) ?? `(${value.length} bytes binary)`).slice(0, 200))));
    let next = kv.version === '1' ? 0 : Number(kv.mod_revision) - 1;
    if (next === 0) historyStatus.textContent = `created at revision ${kv.create_revision}`;
    const more = async () => {
      next = await historyFrom(key, next, historyRows, historyStatus);
      if (next > 0) history.append(el('button', { class: 'link', onclick: (e) => { e.target.remove(); more(); } }, 'older…'));
    };
    if (next > 0) await more();
  };

  const actions = el('div', { class: 'toolbar' },
      el('button', { id: 'edit-btn', onclick: edit }, 'Edit'),
      el('button', { id: 'history-btn', onclick: () => showHistory().catch(showError) }, 'History'),
      el('button', { id: 'reload-btn', onclick: () => renderKey(panel, key, onChanged) }, 'Reload'),
      el('button', { class: 'danger', id: 'delete-btn', onclick: confirmDelete }, 'Delete…'));
  panel.replaceChildren(title, fields(kv, ttl), body, message, actions, history);
}

function newKeyForm(onCreated) {
  const key = el('input', { id: 'new-key', placeholder: 'key, e.g. /app/config', size: 28 });
  const value = el('input', { id: 'new-value', placeholder: 'value', size: 28 });
  const message = el('span', { id: 'new-message' });
  const create = async () => {
    if (key.value === '') return;
    const bytes = textToBytes(key.value);
    // Create only: refuses to overwrite a key that exists.
    const result = await call('/v3/kv/txn', {
      compare: [{ target: 'CREATE', key: b64(bytes), result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: b64(bytes), value: b64(textToBytes(value.value)) } }],
    });
    if (!result.succeeded) {
      message.className = 'error';
      message.textContent = 'Not created: the key exists (open it to edit).';
      return;
    }
    message.className = 'ok';
    message.textContent = `Created at revision ${result.header.revision}.`;
    onCreated(bytes);
  };
  return el('div', { class: 'toolbar' }, key, value,
    el('button', { id: 'create-btn', onclick: () => create().catch((err) => { message.className = 'error'; message.textContent = err.message; }) }, 'Create'),
    message);
}

export function mount(main, param) {
  selectedKey = param ? hashToKey(param) : null;
  const treeList = el('ul', { class: 'tree root', id: 'tree' });
  const panel = el('div', { class: 'card grow', id: 'key-panel' },
    el('p', { class: 'muted' }, 'Select a key in the tree.'));
  const error = el('p', { class: 'error', id: 'keys-error' });
  const rerender = () => treeList.replaceChildren(renderNode(root, rerender));
  const changed = async (key) => {
    invalidatePath(key);
    await reopenPath(key);
    rerender();
    countUnder('').then((n) => { root.count = n; rerender(); }).catch(() => {});
  };
  main.replaceChildren(
    el('div', { class: 'row' },
      el('div', { class: 'card tree-panel' }, el('h2', {}, 'Keys'), newKeyForm(async (key) => {
        await changed(key);
        location.hash = '#/key/' + keyToHash(key);
      }), treeList, error),
      panel));
  (async () => {
    if (root.children === null) await loadMore(root);
    if (selectedKey !== null) await reopenPath(selectedKey);
    rerender();
    if (root.count === null) {
      root.count = await countUnder('');
      rerender();
    }
    if (selectedKey !== null) await renderKey(panel, selectedKey, changed);
  })().catch((err) => { error.textContent = err.message; });
  return () => {};
}
