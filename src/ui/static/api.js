// The console's only way to the cluster: the JSON gateway (/v3/...) and the
// plain HTTP endpoints (/health, /metrics), exactly as any HTTP client of
// the client port would use them.
//
// Keys and values travel base64-encoded. Inside the console a key is a
// "byte string": a JS string whose every code unit is one byte (0-255), so
// binary keys survive, comparisons follow etcd's byte order, and btoa/atob
// convert directly.

// The auth token, once a user signs in. Held in memory only: never written
// to storage or cookies, gone when the tab closes. The password is never kept.
let authToken = null;
let pendingLogin = null;

export class GatewayError extends Error {
  constructor(httpStatus, code, message) {
    super(message);
    this.httpStatus = httpStatus;
    this.code = code;  // the gRPC code the gateway reports (0 when none)
  }
}

// gRPC codes the gateway reports.
export const Code = { InvalidArgument: 3, FailedPrecondition: 9, OutOfRange: 11, PermissionDenied: 7, Unauthenticated: 16 };

export const b64 = (bytes) => btoa(bytes);
export const unb64 = (text) => (text ? atob(text) : '');

export function textToBytes(text) {
  let out = '';
  for (const b of new TextEncoder().encode(text)) out += String.fromCharCode(b);
  return out;
}

function toUint8(bytes) {
  const array = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) array[i] = bytes.charCodeAt(i);
  return array;
}

// The text of `bytes` if they are UTF-8 without control characters other
// than tab and line breaks; null otherwise (binary).
export function bytesToText(bytes) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(toUint8(bytes));
  } catch {
    return null;
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? null : text;
}

// For labels: text where possible, \xNN escapes for the rest.
export function displayBytes(bytes) {
  const text = bytesToText(bytes);
  if (text !== null) return text;
  let out = '';
  for (const ch of bytes) {
    const c = ch.charCodeAt(0);
    out += c >= 0x20 && c < 0x7f ? ch : '\\x' + c.toString(16).padStart(2, '0');
  }
  return out;
}

export function hexDump(bytes) {
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const chunk = bytes.slice(off, off + 16);
    const hex = [...chunk].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' ');
    const ascii = [...chunk].map((c) => (c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) < 0x7f ? c : '.')).join('');
    lines.push(off.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + ascii);
  }
  return lines.join('\n');
}

// Editable forms of a value's bytes, and their parsers. A parser returns the
// byte string, or throws an Error saying what is wrong with the input, so a
// save never sends bytes the user did not mean.
export function bytesToHex(bytes) {
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    lines.push([...bytes.slice(off, off + 16)].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(' '));
  }
  return lines.join('\n');
}

export function hexToBytes(text) {
  const digits = text.replace(/\s+/g, '');
  const bad = digits.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw new Error(`not hex: ${JSON.stringify(digits[bad])} is not a hex digit`);
  if (digits.length % 2 !== 0) throw new Error(`not hex: ${digits.length} digits, an odd number (two per byte)`);
  let out = '';
  for (let i = 0; i < digits.length; i += 2) out += String.fromCharCode(parseInt(digits.slice(i, i + 2), 16));
  return out;
}

export function base64ToBytes(text) {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw new Error('not base64: use A-Z a-z 0-9 + / with = padding to a multiple of 4 characters');
  }
  return atob(compact);
}

// The smallest key greater than every key starting with `prefix`: etcd's
// range_end for a prefix. "\0" (every key from `key` on) when no such key
// exists (the prefix is empty or all 0xff).
export function prefixEnd(prefix) {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return '\0';
}

// URL-safe base64 of a byte string, for keys in the page's address.
export const keyToHash = (bytes) => b64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
export function hashToKey(text) {
  const std = text.replace(/-/g, '+').replace(/_/g, '/');
  return unb64(std + '='.repeat((4 - (std.length % 4)) % 4));
}

function requestHeaders() {
  const headers = { 'Content-Type': 'application/json' };
  if (authToken !== null) headers.Authorization = authToken;
  return headers;
}

// The answers that mean "sign in first" (or again): no user name given, or
// a token the server no longer accepts.
function isAuthError(err) {
  return (
    err.code === Code.Unauthenticated ||
    /user name is empty|invalid auth token|auth token is expired|token is expired/i.test(err.message)
  );
}

async function errorFrom(res) {
  const text = await res.text();
  try {
    const body = JSON.parse(text);
    return new GatewayError(res.status, body.code ?? 0, body.message || body.error || res.statusText);
  } catch {
    return new GatewayError(res.status, 0, text.trim() || res.statusText);
  }
}

// One unary gateway call, e.g. call('/v3/kv/range', {key: b64('foo')}).
// `base` reaches another member's client URL (same paths); a call to this
// member that needs a login waits for the user to sign in, then retries.
export async function call(path, body = {}, { base = '', signal } = {}) {
  for (;;) {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: requestHeaders(),
      body: JSON.stringify(body),
      signal,
    });
    if (res.ok) return res.json();
    const err = await errorFrom(res);
    if (base === '' && isAuthError(err)) {
      await signIn(err.message);
      continue;
    }
    throw err;
  }
}

// A streaming gateway call: yields each reply's `result` as it arrives,
// until the server ends the stream or `signal` aborts it.
export async function* stream(path, body, { signal } = {}) {
  for (;;) {
    const res = await fetch(path, { method: 'POST', headers: requestHeaders(), body: JSON.stringify(body), signal });
    if (!res.ok) {
      const err = await errorFrom(res);
      if (isAuthError(err)) {
        await signIn(err.message);
        continue;
      }
      throw err;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === '') continue;
        const message = JSON.parse(line);
        if (message.error) {
          throw new GatewayError(message.error.http_code ?? 500, message.error.grpc_code ?? 0, message.error.message);
        }
        yield message.result;
      }
    }
  }
}

// A plain GET (/health, /metrics), on this member or another's `base`.
export async function get(path, { base = '', signal } = {}) {
  const res = await fetch(base + path, { signal, headers: authToken !== null ? { Authorization: authToken } : {} });
  return { status: res.status, text: await res.text() };
}

// Shows the login form and resolves once the user has signed in. Calls that
// fail for want of a token meanwhile all wait on the same form.
function signIn(reason) {
  if (pendingLogin !== null) return pendingLogin;
  pendingLogin = new Promise((resolve) => {
    const overlay = document.getElementById('login');
    const form = document.getElementById('login-form');
    const user = document.getElementById('login-user');
    const password = document.getElementById('login-password');
    const error = document.getElementById('login-error');
    document.getElementById('login-reason').textContent = reason;
    error.textContent = '';
    overlay.hidden = false;
    user.focus();
    const onSubmit = async (event) => {
      event.preventDefault();
      try {
        const res = await fetch('/v3/auth/authenticate', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: user.value, password: password.value }),
        });
        if (!res.ok) throw await errorFrom(res);
        authToken = (await res.json()).token;
      } catch (err) {
        error.textContent = err.message;
        return;
      } finally {
        password.value = '';
      }
      form.removeEventListener('submit', onSubmit);
      overlay.hidden = true;
      pendingLogin = null;
      resolve();
    };
    form.addEventListener('submit', onSubmit);
  });
  return pendingLogin;
}

// Small DOM helper: el('td', {class: 'mono'}, 'text', child, ...).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A lease ID as etcdctl prints it (16 hex digits).
export const leaseHex = (id) => BigInt(id).toString(16).padStart(16, '0');

export function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return (unit === 0 ? value : value.toFixed(1)) + ' ' + units[unit];
}
