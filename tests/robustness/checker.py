"""Linearizability checker for histories of etcd's KV API (docs/robustness.md).

A history is a list of Op: what a client asked (kind and arguments), when it
asked (invoke) and when it got the answer (complete), and the answer. An op
whose answer never came (timeout, connection lost) has complete=None and no
answer: it may or may not have taken effect, and if it did, at any moment
after its invocation.

The model is etcd's key space: one global revision; every write that changes
something (put, delete of an existing key, a txn that writes, a lease revoke
with attached keys) makes exactly one new revision; each key has a value,
create_revision, mod_revision, version and lease. Every answer carries
header.revision, the store revision the operation saw (a read) or made (a
write). The search is Wing & Gong's with Lowe's memoisation (a set of
(linearized ops, model state) already explored), and the revisions prune it:

  * a write answered with revision R can only be linearized when the model
    is at R-1 (it makes R); a read answered with R only when the model is at R;
  * so an op of unknown outcome can only take effect at a revision that no
    answered write owns (a "gap"), and if a read or a watch saw its value at
    mod_revision M, only at M (every put writes a value no other put writes);
  * revisions a watch reported are facts about the write at that revision:
    whichever op the search puts there must produce exactly those events.

The checker does not trust the revisions: they only narrow where an op may go;
every answer (values, mod/create revisions, versions, counts) is still checked
against the model's state at that place, and real time (an op that completed
before another was invoked comes first) is enforced by the search itself.

Failures are shrunk (shrink()) by steps that keep a history non-linearizable
if the original was: cutting it at a time (ops still running then become
unknown), dropping reads, and turning writes into "opaque" writes that make
their revision but touch no key we still look at.
"""

import bisect
import json
import time

PUT, DELETE, CAS, REVOKE, GET, RANGE, OPAQUE = (
    "put", "delete", "cas", "revoke", "get", "range", "opaque")
WRITES = {PUT, DELETE, CAS, REVOKE, OPAQUE}
READS = {GET, RANGE}

INF = float("inf")
_CACHE_LIMIT = 1_000_000


class Op:
    """One client operation.

    Arguments by kind:
      put:    key, value, lease (0 = none)
      delete: key
      cas:    key, expect_mod (compare mod_revision(key) == expect_mod), value
              (put in the success branch; the failure branch gets key)
      revoke: lease (an explicit LeaseRevoke, or a lease's expiry: see below)
      get:    key
      range:  key (a prefix)
      opaque: nothing (a write of no interest, made by shrinking)
    Answer (None when unknown): rev = header.revision, plus
      put/opaque: nothing; delete: deleted (count);
      cas: succeeded, kvs (the failure branch's range result);
      get/range: kvs, a list of (key, value, create_revision, mod_revision,
      version, lease) sorted by key; revoke: nothing.

    A lease's expiry is a revoke nobody asked for: invoked when the grant was
    invoked (it can happen any time after), of unknown outcome until someone
    saw the lease gone (LeaseTimeToLive TTL -1): from then on it is a revoke
    with complete = that moment and rev = None (no revision was reported). It
    must then be placed before complete: deleting the lease's keys at a
    revision no answered write owns, or, if no key is attached any more, as a
    no-op at the last moment (an expired lease takes no put after it: etcd
    refuses puts on a missing lease, so moving a no-op expiry later changes
    nothing, and trying it early would only multiply the search).
    """

    __slots__ = ("id", "client", "kind", "key", "value", "lease", "expect_mod",
                 "invoke", "complete", "rev", "kvs", "deleted", "succeeded",
                 "error", "pinned")

    def __init__(self, kind, client=0, key=None, value=None, lease=0,
                 expect_mod=None, invoke=0.0, complete=None, rev=None,
                 kvs=None, deleted=None, succeeded=None, error=None, id=None):
        self.id = id
        self.client = client
        self.kind = kind
        self.key = key
        self.value = value
        self.lease = lease
        self.expect_mod = expect_mod
        self.invoke = invoke
        self.complete = complete
        self.rev = rev
        self.kvs = [tuple(kv) for kv in kvs] if kvs is not None else None
        self.deleted = deleted
        self.succeeded = succeeded
        self.error = error
        self.pinned = None  # revision an unknown write must take (observed)

    @property
    def known(self):
        return self.complete is not None

    def to_json(self):
        d = {s: getattr(self, s) for s in self.__slots__ if s != "pinned"}
        return {k: v for k, v in d.items() if v is not None}

    @staticmethod
    def from_json(d):
        return Op(**d)

    def copy(self, **changes):
        d = self.to_json()
        d.update(changes)
        return Op.from_json(d)

    def describe(self):
        k = self.kind
        if k == PUT:
            s = f"put({self.key!r}, {self.value!r}" + (f", lease={self.lease:x}" if self.lease else "") + ")"
        elif k == DELETE:
            s = f"delete({self.key!r})"
        elif k == CAS:
            s = f"txn(if mod_rev({self.key!r})=={self.expect_mod} then put {self.value!r} else get)"
        elif k == REVOKE:
            s = f"lease_revoke({self.lease:x})"
            if self.known and self.rev is None:
                return f"lease_expiry({self.lease:x}) -> gone (TTL -1) by then"
        elif k == GET:
            s = f"get({self.key!r})"
        elif k == RANGE:
            s = f"range(prefix={self.key!r})"
        else:
            s = "opaque write"
        if not self.known:
            return s + " -> unknown" + (f" ({self.error})" if self.error else "")
        r = f" -> rev {self.rev}"
        if k == DELETE:
            r += f", deleted {self.deleted}"
        if k == CAS:
            r += ", succeeded" if self.succeeded else f", failed, got {_kvs_str(self.kvs)}"
        if k in READS:
            r += f", {_kvs_str(self.kvs)}"
        return s + r


def _kvs_str(kvs):
    if not kvs:
        return "[]"
    return "[" + ", ".join(f"{k!r}={v!r}(c{c},m{m},v{ver}" + (f",l{le:x}" if le else "") + ")"
                           for k, v, c, m, ver, le in kvs) + "]"


# ---- model -----------------------------------------------------------------
# State: (rev, kv) where kv is a tuple sorted by key of
# (key, value, create_revision, mod_revision, version, lease): hashable, small.

def _kv_get(kv, key):
    for item in kv:
        if item[0] == key:
            return item
    return None


def _kv_set(kv, item):
    out = [x for x in kv if x[0] != item[0]]
    out.append(item)
    out.sort()
    return tuple(out)


def _kv_del(kv, key):
    return tuple(x for x in kv if x[0] != key)


def _in_scope(key, scope):
    return scope is None or key in scope


def _effect(state, op, rev_new):
    """Applies a write at revision rev_new. Returns (new_kv, events) or None
    when the op would change nothing (so it makes no revision)."""
    _, kv = state
    if op.kind == PUT or op.kind == CAS:
        if op.kind == CAS:
            cur = _kv_get(kv, op.key)
            if (cur[3] if cur else 0) != op.expect_mod:
                return None
        cur = _kv_get(kv, op.key)
        create = cur[2] if cur else rev_new
        version = (cur[4] + 1) if cur else 1
        lease = op.lease if op.kind == PUT else 0
        item = (op.key, op.value, create, rev_new, version, lease)
        return _kv_set(kv, item), frozenset({("put", op.key, op.value)})
    if op.kind == DELETE:
        if _kv_get(kv, op.key) is None:
            return None
        return _kv_del(kv, op.key), frozenset({("delete", op.key, None)})
    if op.kind == REVOKE:
        gone = [x[0] for x in kv if x[5] == op.lease]
        if not gone:
            return None
        return (tuple(x for x in kv if x[5] != op.lease),
                frozenset(("delete", k, None) for k in gone))
    if op.kind == OPAQUE:
        return kv, None
    raise ValueError(op.kind)


class Model:
    """etcd's KV semantics plus the revision facts of one history.

    owned: revisions made by answered writes; observed: revision -> the set of
    events a watch saw at it (only events on keys in scope are compared, and
    only when the watches covered the whole key space)."""

    def __init__(self, ops, observed=None, scope=None):
        self.owned = {op.rev for op in ops if op.known and op.kind in WRITES and
                      _writes_when_known(op)}
        self.pinned = {op.pinned for op in ops if op.pinned is not None}
        self.observed = observed or {}
        self.scope = scope

    def step(self, state, op, forced=False):
        """Returns the state after op, or None if op cannot go here.

        forced: op's return is the first one left (it cannot wait longer)."""
        rev, kv = state
        k = op.kind
        if k == REVOKE and op.known and op.rev is None:
            return self._expiry(state, op, forced)
        if not op.known:
            if k in READS:
                return None  # never scheduled: reads of unknown outcome are dropped
            nxt = rev + 1
            if op.pinned is not None and op.pinned != nxt:
                return None
            if nxt in self.owned:
                return None
            res = _effect(state, op, nxt)
            if res is None:
                if k == REVOKE and self.scope is not None:
                    return (nxt, kv)  # it may have deleted keys out of scope
                return None
            new_kv, events = res
            if not self._events_ok(nxt, events):
                return None
            return (nxt, new_kv)
        if k in READS:
            if op.rev != rev:
                return None
            if k == GET:
                cur = _kv_get(kv, op.key)
                return state if list(op.kvs) == ([cur] if cur else []) else None
            want = [x for x in kv if x[0].startswith(op.key) and _in_scope(x[0], self.scope)]
            got = [x for x in op.kvs if _in_scope(x[0], self.scope)]
            return state if got == want else None
        if k == DELETE and op.deleted == 0:
            if op.rev != rev or _kv_get(kv, op.key) is not None:
                return None
            return state
        if k == CAS and not op.succeeded:
            if op.rev != rev:
                return None
            cur = _kv_get(kv, op.key)
            if (cur[3] if cur else 0) == op.expect_mod:
                return None
            return state if list(op.kvs or []) == ([cur] if cur else []) else None
        if k == REVOKE:
            attached = any(x[5] == op.lease for x in kv)
            if op.rev == rev:
                # A revoke of a lease with no keys left makes no revision.
                return None if attached else state
            if op.rev != rev + 1:
                return None
            if not attached and self.scope is None:
                return None
            new_kv = tuple(x for x in kv if x[5] != op.lease)
            gone = frozenset(("delete", x[0], None) for x in kv if x[5] == op.lease)
            # With a scope, the keys deleted out of it are unknown.
            if self.scope is None and not self._events_ok(op.rev, gone):
                return None
            return (op.rev, new_kv)
        # A write that made revision op.rev.
        if op.rev != rev + 1:
            return None
        res = _effect(state, op, op.rev)
        if res is None:
            return None
        new_kv, events = res
        if k == DELETE and op.deleted != 1:
            return None
        if not self._events_ok(op.rev, events):
            return None
        return (op.rev, new_kv)

    def _expiry(self, state, op, forced):
        """A lease expiry seen by its complete time (see Op); rev unknown."""
        rev, kv = state
        gone = [x for x in kv if x[5] == op.lease]
        if not gone:
            return state if forced else None
        nxt = rev + 1
        if nxt in self.owned or nxt in self.pinned:
            return None
        if not self._events_ok(nxt, frozenset(("delete", x[0], None) for x in gone)):
            return None
        return (nxt, tuple(x for x in kv if x[5] != op.lease))

    def _events_ok(self, rev, events):
        seen = self.observed.get(rev)
        if seen is None or events is None:
            return True
        if self.scope is not None:
            events = frozenset(e for e in events if e[1] in self.scope)
            seen = frozenset(e for e in seen if e[1] in self.scope)
        return events == seen


def _writes_when_known(op):
    """True if an answered write made a new revision."""
    if op.kind == DELETE:
        return op.deleted != 0
    if op.kind == CAS:
        return bool(op.succeeded)
    if op.kind == REVOKE:
        return False  # made op.rev only if keys were attached: not known beforehand
    return True


# ---- the search -------------------------------------------------------------

class _Entry:
    __slots__ = ("op", "index", "is_call", "match", "prev", "next", "time")

    def __init__(self, op, index, is_call, time_):
        self.op, self.index, self.is_call, self.time = op, index, is_call, time_
        self.match = self.prev = self.next = None


class Result:
    def __init__(self, ok, linearization=None, frontier=None, explored=0,
                 seconds=0.0, timed_out=False):
        self.ok = ok
        self.linearization = linearization  # list of (op, state after) when ok
        self.frontier = frontier            # details of the deepest dead end when not ok
        self.explored = explored
        self.seconds = seconds
        self.timed_out = timed_out


def prepare(ops, observed=None):
    """Pins unknown puts whose value was observed; drops unknown reads.

    Returns the list of ops the search must place."""
    seen_at = {}  # value -> mod revision
    for op in ops:
        if op.known and op.kvs:
            for kv in op.kvs:
                seen_at.setdefault(kv[1], kv[3])
    for rev, events in (observed or {}).items():
        for kind, _key, value in events:
            if kind == "put":
                seen_at.setdefault(value, rev)
    out = []
    for op in ops:
        if not op.known and op.kind in READS:
            continue
        op.pinned = None
        if not op.known and op.kind in (PUT, CAS) and op.value in seen_at:
            op.pinned = seen_at[op.value]
        out.append(op)
    return out


def check(ops, observed=None, initial=(1, ()), scope=None, time_limit=None):
    """Searches a linearization of ops from the initial state (rev, kv tuple).

    observed: {revision: frozenset of (kind, key, value)} from watches that
    covered the whole key space. Returns a Result.

    Answered ops sit in Wing & Gong's list of call and return entries: the
    candidates at each step are the calls before the first return. Ops of
    unknown outcome have no return; they are kept out of the list and are
    candidates only at a gap (the next revision is owned by no answered
    write) and only if invoked before that first return."""
    t0 = time.monotonic()
    ops = prepare(ops, observed)
    model = Model(ops, observed, scope)
    for i, op in enumerate(ops):
        op.id = op.id if op.id is not None else i
    entries = []
    unknown = []
    for i, op in enumerate(ops):
        if not op.known:
            unknown.append(i)
            continue
        call = _Entry(op, i, True, op.invoke)
        ret = _Entry(op, i, False, op.complete)
        call.match, ret.match = ret, call
        entries.append(call)
        entries.append(ret)
    # At equal times a call sorts before a return: such ops count as concurrent.
    entries.sort(key=lambda e: (e.time, 0 if e.is_call else 1, e.index))
    unknown.sort(key=lambda i: (ops[i].invoke, i))
    unknown_invokes = [ops[i].invoke for i in unknown]
    # No answered op and no watch event lies beyond max_rev: once the model
    # passes it no answered op can be placed any more, so an unknown op never
    # needs to make a revision above it.
    max_rev = max([op.rev for op in ops if op.known and op.rev is not None]
                  + list((observed or {}).keys()) + [initial[0]])
    pinned_at = {}
    for i in unknown:
        if ops[i].pinned is not None:
            pinned_at.setdefault(ops[i].pinned, []).append(i)
    head = _Entry(None, -1, False, -INF)
    prev = head
    for e in entries:
        prev.next, e.prev = e, prev
        prev = e
    must = [op.pinned is not None or op.known for op in ops]
    remaining_must = sum(must)
    placed = [False] * len(ops)
    # The set of placed ops, compactly (a bitset over 10^5 ops would cost
    # kilobytes per cache entry): answered ops are placed roughly in order of
    # invocation, so they are kept as "the first k by invocation, plus the
    # few placed beyond"; ops of unknown outcome as a bitset of their ranks.
    # Lease expiries are invoked early and placed late: in the prefix they
    # would hold back everything after them (and "ahead" would grow with the
    # history), so they are ranked with the unknown ops in the bitset.
    expiries = [i for i, op in enumerate(ops) if op.known and op.kind == REVOKE and op.rev is None]
    known_rank = {}
    for i in sorted((i for i, op in enumerate(ops) if op.known and op.rev is not None
                     or op.known and op.kind != REVOKE),
                    key=lambda i: (ops[i].invoke, i)):
        known_rank[i] = len(known_rank)
    unknown_rank = {i: r for r, i in enumerate(unknown + expiries)}
    prefix = 0
    ahead = set()
    # Opaque writes of unknown outcome are interchangeable: any linearization
    # that uses one can use instead one invoked earlier that is still unused.
    # So they are used in invocation order only (else the search would try
    # every subset of them when no linearization exists).
    opaque_rank = {}
    for i in unknown:
        if ops[i].kind == OPAQUE:
            opaque_rank[i] = len(opaque_rank)
    opaque_used = 0

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        r = e.match
        r.prev.next = r.next
        if r.next:
            r.next.prev = r.prev

    def unlift(e):
        r = e.match
        r.prev.next = r
        if r.next:
            r.next.prev = r
        e.prev.next = e
        if e.next:
            e.next.prev = e

    def candidates(state):
        """(list of candidate indices, the op whose return bounds them)."""
        out = []
        expiries = []
        e = head.next
        while e is not None and e.is_call:
            if e.op.kind == REVOKE and e.op.rev is None:
                expiries.append(e.index)  # pending for long: try them last
            else:
                out.append(e.index)
            e = e.next
        out.extend(expiries)
        limit = e.time if e is not None else INF
        nxt = state[0] + 1
        if nxt in pinned_at:
            # Observed at nxt: nothing else can make that revision.
            out.extend(i for i in pinned_at[nxt] if not placed[i] and ops[i].invoke <= limit)
        elif unknown and nxt not in model.owned and nxt <= max_rev:
            # Newest first: an op that took effect at a gap was most likely
            # invoked shortly before it (old ones mostly never arrived).
            for j in range(bisect.bisect_right(unknown_invokes, limit) - 1, -1, -1):
                i = unknown[j]
                if not placed[i]:
                    out.append(i)
        return out, (e.op if e is not None else None)

    by_index = {e.index: e for e in entries if e.is_call}
    state = initial
    unknown_bits = 0
    cache = set()
    stack = []
    best = (-1, None, None)
    explored = 0
    cands, blocker = candidates(state)
    pos = 0
    while True:
        if remaining_must == 0:
            # Whatever is left has an unknown outcome: it took no effect.
            lin = [(ops[i], s) for i, s, *_ in stack]
            return Result(True, lin, explored=explored, seconds=time.monotonic() - t0)
        advanced = False
        while pos < len(cands):
            i = cands[pos]
            pos += 1
            rank = opaque_rank.get(i)
            if rank is not None and rank != opaque_used:
                continue
            explored += 1
            new_state = model.step(state, ops[i], ops[i] is blocker)
            if new_state is None:
                continue
            r = known_rank.get(i)
            if r is None:
                key = (prefix, frozenset(ahead), unknown_bits | (1 << unknown_rank[i]), new_state)
            elif r == prefix:
                p = prefix + 1
                while p in ahead:
                    p += 1
                key = (p, frozenset(x for x in ahead if x > p), unknown_bits, new_state)
            else:
                key = (prefix, frozenset(ahead | {r}), unknown_bits, new_state)
            if key in cache:
                continue
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()  # only pruning is lost, never a linearization
            cache.add(key)
            stack.append((i, new_state, state, cands, pos, blocker, prefix, ahead, unknown_bits))
            state = new_state
            prefix, ahead, unknown_bits = key[0], set(key[1]), key[2]
            placed[i] = True
            if must[i]:
                remaining_must -= 1
            if rank is not None:
                opaque_used += 1
            if i in by_index:
                lift(by_index[i])
            cands, blocker = candidates(state)
            pos = 0
            advanced = True
            break
        if advanced:
            continue
        if len(stack) > best[0]:
            best = (len(stack), state, blocker)
        if not stack:
            return Result(False, frontier=_frontier(best), explored=explored,
                          seconds=time.monotonic() - t0)
        if time_limit is not None and time.monotonic() - t0 > time_limit:
            return Result(False, frontier=_frontier(best), explored=explored,
                          seconds=time.monotonic() - t0, timed_out=True)
        i, _, state, cands, pos, blocker, prefix, ahead, unknown_bits = stack.pop()
        placed[i] = False
        if must[i]:
            remaining_must += 1
        if i in opaque_rank:
            opaque_used -= 1
        if i in by_index:
            unlift(by_index[i])


def _frontier(best):
    depth, state, blocked = best
    return {"depth": depth, "state": state, "blocked": blocked}


# ---- projection and shrinking ------------------------------------------------

def keys_of(op):
    if op.kind in (PUT, DELETE, CAS, GET):
        return {op.key}
    if op.kind == RANGE:
        return {"prefix:" + op.key}
    return set()


def project(ops, keys):
    """Keeps ops on `keys`; other writes become opaque (same revision and
    timing, no effect on the kept keys); other reads are dropped, and range
    results are restricted to the kept keys. A linearization of the original
    is one of the projection, so a projection that fails proves the original
    fails."""
    out = []
    for op in ops:
        if op.kind == RANGE:
            if op.known and any(k.startswith(op.key) for k in keys):
                out.append(op.copy(kvs=[kv for kv in op.kvs if kv[0] in keys]))
            continue
        if op.kind in (PUT, DELETE, CAS, GET) and op.key in keys:
            out.append(op)
            continue
        if op.kind in READS:
            continue
        if op.kind == REVOKE:
            # Its effect on kept keys matters (check with scope=keys). An
            # expiry becomes one of unknown outcome: out of scope it may have
            # deleted keys we no longer see (a weaker history: still sound).
            out.append(op.copy(complete=None) if op.known and op.rev is None else op)
            continue
        if op.known and not _writes_when_known(op):
            continue
        if op.kind in (PUT, CAS) and not op.known:
            # Unknown write elsewhere: may take a gap or not; keep it as opaque.
            out.append(Op(OPAQUE, client=op.client, invoke=op.invoke, complete=None,
                          id=op.id, value=op.value))
            continue
        if op.kind == DELETE and not op.known:
            out.append(Op(OPAQUE, client=op.client, invoke=op.invoke, complete=None, id=op.id))
            continue
        out.append(Op(OPAQUE, client=op.client, invoke=op.invoke, complete=op.complete,
                      rev=op.rev, id=op.id))
    return out


def cut(ops, t):
    """The history as it stood at time t: ops invoked later are gone, ops still
    running have an unknown outcome."""
    out = []
    for op in ops:
        if op.invoke > t:
            continue
        if op.known and op.complete > t:
            if op.kind in READS:
                continue
            op = op.copy(complete=None, rev=None, kvs=None, deleted=None, succeeded=None,
                         error="cut")
        out.append(op)
    return out


def shrink(ops, initial=(1, ()), deadline_s=60.0, observed=None):
    """Returns (smaller history that still fails, scope) or (ops, None).

    scope: the keys the smaller history is about (check it with scope=...)."""
    t_end = time.monotonic() + deadline_s
    scope = None

    def fails(h, sc, obs=None):
        r = check([op.copy() for op in h], observed=obs, initial=_restrict(initial, sc),
                  scope=sc, time_limit=max(1.0, t_end - time.monotonic()))
        return not r.ok and not r.timed_out

    cur = ops
    if observed and not fails(cur, None, None):
        return ops, None  # only fails with the watch facts: keep everything
    # 1. one key at a time (plus opaque writes elsewhere).
    keys = sorted({k for op in cur for k in keys_of(op) if not k.startswith("prefix:")})
    for k in keys:
        if time.monotonic() > t_end:
            break
        p = project(cur, {k})
        if fails(p, {k}):
            cur, scope = p, {k}
            break
    # 2. the earliest time at which the history already fails.
    times = sorted({op.complete for op in cur if op.known})
    if times:
        lo, hi = 0, len(times) - 1
        while lo < hi and time.monotonic() < t_end:
            mid = (lo + hi) // 2
            if fails(cut(cur, times[mid]), scope):
                hi = mid
            else:
                lo = mid + 1
        c = cut(cur, times[hi])
        if fails(c, scope):
            cur = c
    # 3. drop ops that changed nothing (reads, failed txns, deletes of
    # nothing: removing them keeps a linearizable history linearizable),
    # newest first. Writes stay: their effect is what reads are checked
    # against (turning them into unknown ones would be sound too, but makes
    # the search for a proof of failure exponential).
    i = len(cur) - 1
    while i >= 0 and time.monotonic() < t_end:
        op = cur[i]
        trial = None
        if op.kind in READS or (op.known and op.kind in (CAS, DELETE) and not _writes_when_known(op)):
            trial = cur[:i] + cur[i + 1:]
        if trial is not None and fails(trial, scope):
            cur = trial
        i -= 1
    return cur, scope


def _restrict(initial, scope):
    if scope is None:
        return initial
    return (initial[0], tuple(x for x in initial[1] if x[0] in scope))


# ---- reports -----------------------------------------------------------------

def format_history(ops, t0=None, max_ops=None):
    if not ops:
        return "(empty)"
    t0 = min(op.invoke for op in ops) if t0 is None else t0
    lines = []
    opaque_run = []

    def flush():
        if opaque_run:
            revs = [o.rev for o in opaque_run if o.rev is not None]
            lines.append(f"    ... {len(opaque_run)} opaque write(s) on other keys"
                         + (f", revisions {min(revs)}..{max(revs)}" if revs else "")
                         + f", {sum(1 for o in opaque_run if not o.known)} of unknown outcome")
            opaque_run.clear()
    shown = sorted(ops, key=lambda o: o.invoke)
    if max_ops and len(shown) > max_ops:
        shown = shown[-max_ops:]
        lines.append(f"    (first {len(ops) - max_ops} ops not shown)")
    for op in shown:
        if op.kind == OPAQUE:
            opaque_run.append(op)
            continue
        flush()
        end = f"{(op.complete - t0) * 1000:9.1f}" if op.known else "        ?"
        lines.append(f"  #{op.id:<6} c{op.client:<3} [{(op.invoke - t0) * 1000:9.1f} ms, {end} ms] "
                     + op.describe())
    flush()
    return "\n".join(lines)


def report(ops, result, initial=(1, ()), observed=None, shrink_seconds=60.0):
    """A readable explanation of a failed check, with the shrunk history."""
    small, scope = shrink(ops, initial, shrink_seconds, observed)
    r2 = check([op.copy() for op in small], initial=_restrict(initial, scope), scope=scope,
               observed=observed if small is ops else None)
    fr = r2.frontier if not r2.ok else result.frontier
    out = ["NOT LINEARIZABLE",
           f"history: {len(ops)} ops; shrunk to {len(small)} ops that still have no linearization"
           + (f" (only keys {sorted(scope)} looked at; other writes are opaque)." if scope else "."),
           "",
           "Deepest point the search reached: "
           f"{fr['depth']} ops placed, model at revision {fr['state'][0] if fr['state'] else '?'} with",
           "  " + (_kvs_str(list(fr["state"][1])) if fr["state"] else "?"),
           ("then this op could not be placed before it returned:\n  " + fr["blocked"].describe()
            if fr.get("blocked") is not None else ""),
           "",
           "Shrunk history (times relative to its first op; ? = no answer):",
           format_history(small)]
    return "\n".join(out), small


def dump(path, ops, observed=None, text=None):
    with open(path, "w") as f:
        json.dump({"ops": [op.to_json() for op in ops],
                   "observed": {str(r): sorted(list(e) for e in ev) for r, ev in (observed or {}).items()},
                   "report": text}, f, indent=1)


def load(path):
    with open(path) as f:
        d = json.load(f)
    ops = [Op.from_json(o) for o in d["ops"]]
    observed = {int(r): frozenset(tuple(e) for e in ev) for r, ev in d.get("observed", {}).items()}
    return ops, observed
