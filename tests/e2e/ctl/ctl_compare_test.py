#!/usr/bin/python3
"""etcdppctl against the real etcdctl 3.4: same commands, same bytes.

Starts two fresh single-member servers, by default from the same binary
(--server-cmd: the real etcd or etcdpp; --server: a different one for the
tool under test), runs one command script with etcdctl against the first and
with the tool under test (--etcdppctl) against the second, and compares each step's
stdout, stderr and exit code. Both servers see the same writes in the same
order, so revisions line up; what differs between two servers (cluster and
member IDs, ports, timings) is masked before comparing. The two tools run
each step at the same time, each against its own server: most of a step's
time is waiting (a watch stopped after seconds, a dial to a dead endpoint).

    /usr/bin/python3 ctl_compare_test.py --etcdppctl build/bin/etcdppctl \
        [--etcdctl /usr/bin/etcdctl] [--server-cmd /usr/bin/etcd] \
        [--server build/bin/etcdpp] [-v]

Exits 1 when a step differs or a program is missing. Prints a closing
"N passed, N failed" line.
"""

import argparse
import concurrent.futures
import difflib
import hashlib
import json
import os
import re
import select
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import etcd_launcher  # noqa: E402

TXN_OK = 'mod("k1") > "0"\nvalue("k2") = "v2"\n\nput k1 new1 --prev-kv\nget k --prefix --limit=2\n' \
         'del k3 --prev-kv\nput "a b" "c d"\n\nput k1 fail\n\n'
TXN_FAIL = 'version("k1") = "100"\nc("k1") < "5"\nver("k2") != "3"\n\nput k1 x\n\n' \
           'put k1 y --prev-kv\nget k1\ndel k2 --prev-kv\n\n'


def S(*args, stdin=None, env=None, mask=(), kill_after=None, help=False, holder=None,
      snapshot=None):
    """One step: command-line words; {EP} is the tool's own endpoint, {DEAD}
    an endpoint nothing listens on, {LEASE} a lease granted on the tool's
    server (hexadecimal) and {DIR} a scratch directory of the tool's own. A step with kill_after (seconds) is a command that
    does not end by itself (watch): it is stopped with SIGTERM then.

    help=True marks a step that prints a help screen (--help, a bad flag).
    etcdppctl's help is its own text, so such a step compares the error lines
    and the exit code, and only checks that both tools printed help (or that
    neither did) where etcdctl does.

    holder: the words of a command (`lock L`, `elect E p`) that the same tool
    runs first against the same server; the step starts once the holder has
    printed its first line (it holds the lock or leads), and the holder is
    stopped with SIGTERM after the step and must then exit 0.

    snapshot: a file under {DIR} the step saves a snapshot to; it must then
    hold a whole database stream (etcd ends it with the SHA-256 of the rest)."""
    return {"args": list(args), "stdin": stdin, "env": env or {}, "mask": list(mask),
            "kill_after": kill_after, "help": help, "holder": holder, "snapshot": snapshot}


TOOK = [r"took = \S+", r'"took":"[^"]*"', r'"Took" : \S+', r"\| +\d[\d.]*[µmn]?s \|"]
LEASE_IDS = [r'"(ID|id)":\d+', r'"ID" : \d+', r"\b[0-9a-f]{8,16}\b"]
REMAINING = [r"remaining\(\d+s\)", r'"ttl":\d+', r'"TTL" : \d+']
# A lock's or candidate's key ends in its lease ID, which differs between
# servers (and so does its base64 in JSON). The ID is printed with %x, so it
# has fewer than 16 digits when its top nibble is zero.
SESSION_KEYS = LEASE_IDS + [r"(?<=/)[0-9a-f]{1,16}\b", r'"key":"[^"]*"', r'"lease":\d+', r'"Lease" : \d+']
# endpoint hashkv: the servers' histories differ in lease IDs.
HASHES = [r"(?m), \d+$", r'"hash":\d+', r'"Hash" : \d+', r"(?m)\| +\d+ +\|$"]
# etcdppctl words its warnings about ETCDCTL_* variables its own way.
ENV_WARNING = [r"pkg/flags: .*"]
DB_SIZE = [r'"dbSize":\d+', r'"dbSizeInUse":\d+', r'"DBSize" : \d+', r"\d+(\.\d+)? [kMG]?B"]

STEPS = [
    # put
    S("put", "foo", "bar"),
    S("put", "foo", "baz", "--prev-kv"),
    S("put", "foo", "baz2", "--prev-kv", "-w", "json"),
    S("put", "foo", "baz3", "--prev-kv", "-w", "fields"),
    S("put", "stdinkey", stdin="value from stdin\n"),
    S("put", "--", "-dash", "-v"),
    S("put", "uni\u043a\u043b\u044e\u0447", "\u0437\u043d\u0430\u0447"),
    S("put", "a<b>&c", "x\ty\"z\\"),
    S("put", "ctrl\x01key", "v\x7f"),
    S("put", "kk", "vv", "-w", "json", "--prev-kv"),
    S("put", "foo", "--ignore-value"),
    S("put", "ig", "v", "--ignore-lease", "-w", "json"),
    S("put", "badlease", "v", "--lease=zz"),
    S("put", "nolease", "v", "--lease=1234"),
    S("put", "leased", "v", "--lease={LEASE}"),
    S("put", "leased", "v2", "--ignore-lease", "--prev-kv", "-w", "json"),
    S("put", "leased", "--ignore-value", "--prev-kv", "-w", "fields"),
    S("get", "leased", "-w", "json"),
    S("put"),
    S("put", "x", "y", "--ignore-value"),
    S("put", "x", "--bogus", help=True),
    # get
    S("put", "k1", "v1"), S("put", "k2", "v2"), S("put", "k3", "v3"), S("put", "k4", "v4"),
    S("get", "foo"),
    S("get", "foo", "-w", "json"),
    S("get", "foo", "-w", "fields"),
    S("get", "k", "--prefix"),
    S("get", "k", "--prefix", "-w", "json"),
    S("get", "k", "--prefix", "--keys-only"),
    S("get", "k", "--prefix", "--keys-only", "-w", "json"),
    S("get", "k", "--prefix", "--print-value-only"),
    S("get", "k", "--prefix", "--print-value-only", "-w", "json"),
    S("get", "k", "--prefix", "--limit", "2", "-w", "json"),
    S("get", "k", "--prefix", "--limit=2", "-w", "fields"),
    S("get", "k", "--prefix", "--sort-by=VALUE", "--order=DESCEND"),
    S("get", "k", "--prefix", "--sort-by=create", "--order=ascend", "-w", "json"),
    S("get", "k", "--prefix", "--sort-by=MODIFY"),
    S("get", "k", "--prefix", "--sort-by=VERSION", "--order=DESCEND"),
    S("get", "k", "--prefix", "--order=DESCEND", "--limit=3"),
    S("get", "--from-key", "k3"),
    S("get", "k1", "k3"),
    S("get", "k1", "k3", "extra"),
    S("get", "", "--prefix", "--keys-only"),
    S("get", "foo", "--rev", "2"),
    S("get", "foo", "--rev=3", "-w", "json"),
    S("get", "foo", "--rev", "100000"),
    S("get", "k", "--prefix", "--consistency=s"),
    S("get", "k", "--prefix", "--consistency=x"),
    S("get", "k", "--prefix", "--hex"),
    S("get", "k", "--prefix", "--hex", "-w", "json"),
    S("get", "uni", "--prefix", "-w", "fields"),
    S("get", "a<", "--prefix", "-w", "json"),
    S("get", "a<", "--prefix", "-w", "fields"),
    S("get", "ctrl", "--prefix", "-w", "fields"),
    S("get", "ctrl", "--prefix", "-w", "json"),
    S("get", "nosuchkey"),
    S("get", "nosuchkey", "-w", "json"),
    S("get", "k", "--prefix", "-w", "table"),
    S("get", "k", "--prefix", "-w", "yaml"),
    S("get", "k", "--prefix", "--from-key"),
    S("get", "k", "k2", "--prefix"),
    S("get", "k", "--sort-by=FOO"),
    S("get", "k", "--order=SIDEWAYS"),
    S("get", "k", "--rev=abc", help=True),
    S("get"),
    S("get", "--bogus", help=True),
    S("get", "-z", "k", help=True),
    S("get", "--help", help=True),
    # del
    S("del", "k4", "--prev-kv"),
    S("del", "nosuch"),
    S("put", "d1", "1"), S("put", "d2", "2"), S("put", "d3", "3"), S("put", "e1", "1"),
    S("del", "d1", "d3", "-w", "json"),
    S("del", "d", "--prefix", "--prev-kv", "-w", "fields"),
    S("del", "e", "--from-key", "--prev-kv", "-w", "json"),
    S("del"),
    S("del", "a", "b", "c"),
    S("del", "a", "--prefix", "--from-key"),
    # txn
    S("txn", stdin=TXN_OK),
    S("txn", stdin=TXN_FAIL),
    S("txn", "-w", "json", stdin=TXN_OK),
    S("txn", "-w", "fields", stdin=TXN_FAIL),
    S("txn", "-i", stdin='c("k1") < "5"\nver("k1") != "3"\n\nget k1\n\n\n'),
    S("txn", "--interactive", stdin='m("k2") > "1"\nval("k2") = "v2"\n\nget k2\n\nget k1\n\n'),
    S("txn", stdin="\n\n\n"),
    S("txn", stdin="bogus\n\n"),
    S("txn", stdin='mod("k1") > 0\n\n'),
    S("txn", stdin='mod("k1") > "x"\n\n'),
    S("txn", stdin='foo("k1") > "1"\n\n\n\n'),
    S("txn", stdin='mod("k1")>"1"\n\n\n\n'),
    S("txn", stdin='mod("k1") > "1"\n'),
    S("txn", stdin=""),
    S("txn", stdin='mod("k1") > "1"\n\nput\n\n\n'),
    S("txn", stdin='mod("k1") > "1"\n\nfoo bar\n\n\n'),
    S("txn", stdin='mod("k1") > "1"\n\nput k1 --zz\n\n\n', help=True),
    S("txn", stdin='mod("k1") > "1"\n\nget k1 -w json\n\n\n', help=True),
    S("txn", stdin='mod("k1") > "1"\n\ndel k1 --bad\n\n\n', help=True),
    S("txn", stdin='\n\nput k1 x\ndel k1\n\n\n'),
    S("txn", stdin='\n\nput "quoted key" "quoted\\tvalue"\nget "quoted key" -w json\n\n\n',
      help=True),
    S("txn", stdin='\n\nget k --prefix --keys-only --limit 1\n\n\n'),
    S("txn", "extra", stdin="\n\n\n"),
    S("get", "quoted key", "-w", "json"),
    # compaction
    S("compaction"),
    S("compaction", "abc"),
    S("compaction", "3"),
    S("compaction", "3"),
    S("compaction", "5", "--physical", "-w", "json"),
    S("compaction", "100000"),
    S("get", "foo", "--rev", "2"),
    # watch (history only: the servers see no writes while it runs)
    S("watch", "foo", "--rev", "1"),
    S("watch", "k", "--prefix", "--rev", "6", "--prev-kv", kill_after=3),
    S("watch", "k", "--prefix", "--rev", "6", "-w", "json", kill_after=3),
    S("watch", "k2", "--rev", "6", "-w", "fields", kill_after=3),
    S("watch", "k1", "--rev", "6", "--", "sh", "-c",
      "echo $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE", kill_after=3),
    S("watch", "k1", "--rev", "6", "--", "false"),
    S("watch"),
    S("watch", "a", "b", "--prefix"),
    # cluster
    S("member", "list"),
    S("member", "list", "-w", "json"),
    S("member", "list", "-w", "fields"),
    S("member", "list", "-w", "table"),
    # (-w protobuf embeds the server IDs in binary: covered by unit tests.)
    S("endpoint", "status", "-w", "protobuf"),
    S("member", "list", "extra"),
    S("endpoint", "status", mask=DB_SIZE),
    S("endpoint", "status", "-w", "json", mask=DB_SIZE),
    S("endpoint", "status", "-w", "fields", mask=DB_SIZE),
    S("endpoint", "status", "-w", "table", mask=DB_SIZE),
    S("endpoint", "status", "--cluster", mask=DB_SIZE),
    S("endpoint", "health", mask=TOOK),
    S("endpoint", "health", "-w", "json", mask=TOOK),
    S("endpoint", "health", "-w", "fields", mask=TOOK),
    # etcdctl's two lines must match; the build lines etcdppctl adds after
    # them (release, commit, compiler) are masked, as empty when absent.
    S("version", mask=[r"(?s)(?<=\nAPI version: 3\.4\n).*"]),
    S("bogus"),
    # leases ({LEASE} is revoked last)
    S("lease", "grant", "100", mask=LEASE_IDS),
    S("lease", "grant", "100", "-w", "json", mask=LEASE_IDS),
    S("lease", "grant", "100", "-w", "fields", mask=LEASE_IDS),
    S("lease", "grant", "100", "-w", "table"),
    S("lease", "grant"),
    S("lease", "grant", "x"),
    S("lease", "list", mask=LEASE_IDS),
    S("lease", "list", "-w", "json", mask=LEASE_IDS),
    S("lease", "timetolive", "{LEASE}", mask=REMAINING),
    S("lease", "timetolive", "{LEASE}", "--keys", mask=REMAINING),
    S("lease", "timetolive", "{LEASE}", "--keys", "-w", "json", mask=REMAINING),
    S("lease", "timetolive", "{LEASE}", "--keys", "-w", "fields", mask=REMAINING),
    S("lease", "timetolive"),
    S("lease", "timetolive", "123"),
    S("lease", "keep-alive", "--once", "{LEASE}"),
    S("lease", "keep-alive", "--once", "{LEASE}", "-w", "json"),
    S("lease", "keep-alive", "--once", "123"),
    S("lease", "revoke"),
    S("lease", "revoke", "zz"),
    S("lease", "revoke", "123"),
    S("lease", "revoke", "{LEASE}", "-w", "json"),
    S("lease", "timetolive", "{LEASE}"),
    S("get", "leased", "-w", "json"),
    # global flags and environment
    S("--endpoints={DEAD},{EP}", "get", "foo"),
    S("--endpoints", "{DEAD},{EP}", "put", "failover", "ok"),
    S("--endpoints={DEAD}", "--command-timeout=1s", "get", "foo"),
    S("--endpoints={DEAD},{EP}", "--command-timeout=1s", "endpoint", "health", mask=TOOK),
    S("--endpoints={DEAD},{EP}", "--command-timeout=1s", "endpoint", "health", "-w", "json",
      mask=TOOK),
    S("--endpoints={DEAD},{EP}", "--command-timeout=1s", "endpoint", "status", mask=DB_SIZE),
    S("get", "foo", "--write-out=json", "--hex"),
    S("-w", "fields", "get", "foo"),
    S("--dial-timeout=3s", "--command-timeout=10s", "get", "foo"),
    S("--command-timeout=bogus", "get", "foo", help=True),
    S("--endpoints=", "get", "foo"),
    S("get", "foo", env={"ETCDCTL_WRITE_OUT": "json"}),
    S("get", "foo", env={"ETCDCTL_ENDPOINTS": "{DEAD},{EP}", "ETCDCTL_COMMAND_TIMEOUT": "3s"}),
    S("get", "foo", env={"ETCDCTL_HEX": "true"}),
    S("get", "foo", env={"ETCDCTL_WRITE_OUT": "bogus"}),
    S("get", "foo", env={"ETCDCTL_DIAL_TIMEOUT": "bogus"}),
    S("get", "foo", env={"ETCDCTL_BOGUS": "1"}, mask=ENV_WARNING),
    S("-w", "json", "get", "foo", env={"ETCDCTL_WRITE_OUT": "fields"}, mask=ENV_WARNING),
    S("endpoint", "health", "--cluster", mask=TOOK),
    # maintenance (fields is left out of alarm: etcdctl 3.4 crashes on etcd's
    # header-less alarm responses)
    S("alarm", "list"),
    S("alarm", "list", "-w", "json"),
    S("alarm", "list", "-w", "protobuf"),
    S("alarm", "list", "-w", "table"),
    S("alarm", "list", "extra"),
    S("alarm", "disarm"),
    S("alarm", "disarm", "-w", "json"),
    S("alarm", "disarm", "extra"),
    S("alarm", help=True),
    S("defrag"),
    S("defrag", "--cluster"),
    S("defrag", "-w", "json"),
    # (defragmenting takes a while on a busy machine: more than the 1s used elsewhere)
    S("--endpoints={EP},{DEAD}", "--command-timeout=4s", "defrag"),
    S("endpoint", "hashkv", mask=HASHES),
    S("endpoint", "hashkv", "--cluster", mask=HASHES),
    S("endpoint", "hashkv", "--rev", "5", "-w", "json", mask=HASHES),
    S("endpoint", "hashkv", "-w", "fields", mask=HASHES),
    S("endpoint", "hashkv", "-w", "table", mask=HASHES),
    S("endpoint", "hashkv", "-w", "protobuf"),
    S("--endpoints={EP},{DEAD}", "--command-timeout=1s", "endpoint", "hashkv", mask=HASHES),
    S("snapshot", "save", "{DIR}/snap.db", snapshot="snap.db"),
    S("snapshot", "save", "{DIR}/snap2.db", "--command-timeout=20s", snapshot="snap2.db"),
    S("snapshot", "save"),
    S("snapshot", "save", "{DIR}/missing/snap.db"),
    S("--endpoints={EP},{EP}", "snapshot", "save", "{DIR}/snap3.db"),
    S("snapshot", help=True),
    # lock and elect. Last: etcdctl leaves their session leases to expire,
    # etcdppctl revokes them, so later lease listings would differ.
    S("lock"),
    S("lock", "--ttl=x", "L", help=True),
    S("lock", "L1", "--", "sh", "-c", "echo $ETCD_LOCK_KEY $ETCD_LOCK_REV; exit 3",
      mask=SESSION_KEYS),
    S("lock", "L1", "--", "nosuchprogram"),
    S("lock", "--ttl", "5", "L1", "echo", "done"),
    S("lock", "L2", kill_after=3, mask=SESSION_KEYS),
    S("lock", "L2", "-w", "json", kill_after=3, mask=SESSION_KEYS),
    S("get", "L", "--prefix", "--keys-only"),
    S("lock", "L3", "--", "echo", "never", holder=["lock", "L3"], kill_after=3),
    S("elect"),
    S("elect", "E1"),
    S("elect", "a", "b", "c"),
    S("elect", "E1", "p1", kill_after=3, mask=SESSION_KEYS),
    S("elect", "E1", "p1", "-w", "fields", kill_after=3, mask=SESSION_KEYS),
    S("elect", "-l", "E2", holder=["elect", "E2", "p2"], kill_after=3, mask=SESSION_KEYS),
    S("elect", "-l", "E2", "-w", "json", holder=["elect", "E2", "p2"], kill_after=3,
      mask=SESSION_KEYS),
    S("elect", "E3", "second", holder=["elect", "E3", "first"], kill_after=3),
    S("get", "E", "--prefix", "--keys-only"),
]


def start_holder(tool, endpoint, words, env):
    """Starts `tool words...` and waits until it printed a line (it holds)."""
    p = subprocess.Popen([tool, "--endpoints=" + endpoint] + words, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    ready, _, _ = select.select([p.stdout], [], [], 30)
    if not ready or not p.stdout.readline():
        p.kill()
        raise RuntimeError("holder %s did not start: %s" % (words, p.stderr.read().decode()))
    return p


def stop_holder(p):
    """SIGTERM; a holder lets go and exits 0. Returns a problem or None."""
    p.terminate()
    _, err = p.communicate(timeout=30)
    if p.returncode != 0:
        return "holder exited %d: %s" % (p.returncode, err.decode())
    return None


def run_tool(tool, endpoint, dead, lease, scratch, step, timeout=60):
    def subst(a):
        return (a.replace("{EP}", endpoint).replace("{DEAD}", dead)
                .replace("{LEASE}", "%x" % lease).replace("{DIR}", scratch))
    args = [subst(a) for a in step["args"]]
    step_env = {k: subst(v) for k, v in step["env"].items()}
    has_endpoints = (any(a.startswith("--endpoints") for a in args) or
                     "ETCDCTL_ENDPOINTS" in step_env)
    cmd = [tool] + ([] if has_endpoints else ["--endpoints=" + endpoint]) + args
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    env.update(step_env)
    stdin = step["stdin"].encode() if step["stdin"] is not None else b""
    holder = start_holder(tool, endpoint, step["holder"], env) if step["holder"] else None
    try:
        out, err, code = run_command(cmd, env, stdin, step, timeout)
    finally:
        if holder:
            problem = stop_holder(holder)
    if holder and problem:
        err += ("\nTEST: " + problem).encode()
    return out, err, code


def run_command(cmd, env, stdin, step, timeout):
    if step["kill_after"] is None:
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=timeout)
        return p.stdout, p.stderr, p.returncode
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        out, err = p.communicate(stdin, timeout=step["kill_after"])
    except subprocess.TimeoutExpired:
        p.terminate()
        out, err = p.communicate(timeout=timeout)
    return out, err, p.returncode


def server_ids(etcdctl, server):
    """(cluster ID, member ID) of a fresh single-member server, from any
    response header (a server without the Cluster service still answers)."""
    out = subprocess.run([etcdctl, "--endpoints=" + server.endpoint, "get", "__ids__", "-w", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"ETCDCTL_API": "3"},
                         timeout=30, check=True).stdout
    header = json.loads(out)["header"]
    return (header["cluster_id"], header["member_id"])


def grant_lease(etcdctl, server):
    """A long lease on the server (its ID differs between servers), or 0 when
    the server has no Lease service yet."""
    p = subprocess.run([etcdctl, "--endpoints=" + server.endpoint, "lease", "grant", "3600"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"ETCDCTL_API": "3"},
                       timeout=30)
    m = re.match(r"lease ([0-9a-f]+) granted", p.stdout.decode())
    return int(m.group(1), 16) if m else 0


def wait_ready(etcdctl, server):
    """Until the server serves a linearizable read (it has a leader)."""
    for _ in range(100):
        p = subprocess.run([etcdctl, "--endpoints=" + server.endpoint, "get", "__ready__"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env={"ETCDCTL_API": "3"}, timeout=30)
        if p.returncode == 0:
            return
    raise RuntimeError("server not ready:\n" + server.log())


def snapshot_problem(path):
    """None when `path` holds a complete snapshot stream."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "snapshot file: %s" % e
    if len(data) <= 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
        return "snapshot file %s (%d bytes) does not end with its SHA-256" % (path, len(data))
    return None


# What may differ between two server programs (etcd and etcdpp) without a
# client noticing: the version they report and their Raft log positions
# (etcd appends bootstrap entries etcdpp does not). Masked only when the two
# servers are different programs; every other byte must still be equal.
ACROSS_SERVERS = [
    (r'("version":"|"Version" : ")3\.4\.\d+"', r'\1VERSION"'),
    (r'("raftIndex":|"raftAppliedIndex":|"RaftIndex" : |"RaftAppliedIndex" : )\d+', r"\1RAFT_INDEX"),
    # simple and table rows: ... version, db size, is leader, is learner, term, index, applied
    (r"([,|] +)3\.4\.\d+( +[,|]|,)", r"\1VERSION\2"),
    (r"((?:true|false) ?[,|] +(?:true|false) ?[,|] +\d+ ?[,|] +)\d+( ?[,|] +)\d+",
     r"\1RAFT_INDEX\2RAFT_INDEX"),
]


def normalize(data, server, ids, mask, scratch, across_servers=False):
    """Masks what legitimately differs between two servers and two runs."""
    text = data.decode("utf-8", "surrogateescape").replace(scratch, "DIR")
    cluster_id, member_id, lease = ids
    for value, name in ((cluster_id, "CLUSTER_ID"), (member_id, "MEMBER_ID"), (lease, "LEASE")):
        if not value:
            continue
        text = text.replace(str(value), name)
        # Lease IDs print as %016x, member IDs as %x.
        text = text.replace("%016x" % value, name.lower()).replace("%x" % value, name.lower())
    # Whole numbers only: a port's digits also turn up inside lease IDs and
    # revisions, which the masks below must still see whole.
    text = re.sub(r"(?<!\d)%d(?!\d)" % server.client_port, "CLIENT_PORT", text)
    text = re.sub(r"(?<!\d)%d(?!\d)" % server.peer_port, "PEER_PORT", text)
    lines = []
    for line in text.split("\n"):
        if line.startswith('{"level":'):
            continue  # clientv3's retry log: timestamps and random client IDs.
        line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} ", "TIME ", line)
        lines.append(line)
    text = "\n".join(lines)
    if across_servers:
        for pattern, replacement in ACROSS_SERVERS:
            text = re.sub(pattern, replacement, text)
    for pattern in mask:
        text = re.sub(pattern, "MASKED", text)
    # Table columns widen with masked values: compare tables modulo padding.
    if any(line.startswith("+-") for line in lines):
        text = re.sub(r" +", " ", re.sub(r"-+", "-", text))
    return text


def help_problems(want, got):
    """What a help step requires of etcdppctl's help screen: there when
    etcdctl prints one, with a usage line."""
    problems = []
    if bool(want[0]) != bool(got[0]):
        problems.append("stdout: etcdctl printed %d bytes, etcdppctl %d" % (len(want[0]), len(got[0])))
    if got[0] and b"Usage:" not in got[0]:
        problems.append("stdout: etcdppctl's help has no usage line:\n" + got[0].decode())
    return problems


def strip_help(result):
    """A help step's result without its help text: stdout dropped, stderr
    from its first error line on (txn prints a usage there before it)."""
    out, err, code = result
    start = err.find(b"Error:")
    return b"", err[start:] if start >= 0 else err, code


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--etcdppctl", required=True)
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--server-cmd", default="/usr/bin/etcd",
                    help="server binary etcdctl runs against: etcd or etcdpp")
    ap.add_argument("--server", help="server binary the tool under test runs against "
                    "(default: --server-cmd)")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    opts.server = opts.server or opts.server_cmd
    for path in (opts.etcdctl, opts.etcdppctl, opts.server_cmd, opts.server):
        if not os.access(path, os.X_OK):
            print("FAIL: %s not found (run scripts/install-deps.sh, build etcdpp)" % path)
            return 1

    same_tool = os.path.realpath(opts.etcdctl) == os.path.realpath(opts.etcdppctl)
    dead = "127.0.0.1:%d" % etcd_launcher.free_port()
    passed = failed = 0
    with etcd_launcher.Server(opts.server_cmd) as ref, etcd_launcher.Server(opts.server) as ours, \
            tempfile.TemporaryDirectory() as ref_dir, tempfile.TemporaryDirectory() as our_dir, \
            concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        wait_ready(opts.etcdctl, ref)
        wait_ready(opts.etcdctl, ours)
        ref_ids = server_ids(opts.etcdctl, ref) + (grant_lease(opts.etcdctl, ref),)
        our_ids = server_ids(opts.etcdctl, ours) + (grant_lease(opts.etcdctl, ours),)
        for i, step in enumerate(STEPS):
            name = "step %d: %s" % (i, " ".join(step["args"]))
            want = pool.submit(run_tool, opts.etcdctl, ref.endpoint, dead, ref_ids[2], ref_dir, step)
            got = pool.submit(run_tool, opts.etcdppctl, ours.endpoint, dead, our_ids[2], our_dir, step)
            want, got = want.result(), got.result()
            problems = []
            if step["snapshot"]:
                for scratch in (ref_dir, our_dir):
                    problem = snapshot_problem(os.path.join(scratch, step["snapshot"]))
                    if problem:
                        problems.append(problem)
            # etcdppctl's help screens are its own text; when the tool under
            # test is etcdctl itself (against etcdpp), help is compared whole.
            if step["help"] and not same_tool:
                problems += help_problems(want, got)
                want, got = strip_help(want), strip_help(got)
            for label, w, g in (("stdout", want[0], got[0]), ("stderr", want[1], got[1])):
                across = opts.server != opts.server_cmd
                wn = normalize(w, ref, ref_ids, step["mask"], ref_dir, across)
                gn = normalize(g, ours, our_ids, step["mask"], our_dir, across)
                if wn != gn:
                    diff = difflib.unified_diff(wn.splitlines(), gn.splitlines(), "etcdctl",
                                                "etcdppctl", lineterm="")
                    problems.append("%s differs:\n%s" % (label, "\n".join(diff)))
            if want[2] != got[2]:
                problems.append("exit code: etcdctl %d, etcdppctl %d" % (want[2], got[2]))
            if problems:
                failed += 1
                print("FAIL %s\n  %s" % (name, "\n  ".join(problems)))
            else:
                passed += 1
                if opts.verbose:
                    print("ok   %s" % name)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
