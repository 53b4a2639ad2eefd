#!/usr/bin/python3
"""Runs one scripted etcdctl (API v3, etcd 3.4 client) session against a server.

Two modes:

  --server BIN                     runs the scenario on a fresh BIN and checks
                                   each step's exit status and key output.
  --server BIN --reference ETCD    additionally runs it on a fresh reference
                                   etcd and requires identical outputs, after
                                   masking what may legitimately differ:
                                   cluster_id, member_id and raft_term.
                                   Revisions, keys, values, counts, ordering,
                                   error messages and gRPC codes must match.

Both servers get a fresh data dir, so their revisions line up step by step.
etcdctl 3.4 has no --count-only flag (added in 3.5); counts are covered by
`-w json` outputs here and by count_only in etcd3_client_test.py.
Prints a closing "N passed, N failed" line; exits non-zero on any failure.
"""

import difflib
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402


class Step:
    """One etcdctl invocation. ok: expected exit status is 0; expect: substrings of output."""

    def __init__(self, *args, stdin=None, ok=True, expect=()):
        self.args = list(args)
        self.stdin = stdin
        self.ok = ok
        self.expect = list(expect)

    def __str__(self):
        s = "etcdctl " + " ".join(repr(a) if (" " in a or a == "") else a for a in self.args)
        return s + (" <<< " + repr(self.stdin) if self.stdin else "")


TXN_SUCCESS = """mod("foo") > "0"
value("foo") = "bar-v3"
version("foo") = "3"

put foo txn-ok
get foo
del zoo

put foo txn-failed

"""

TXN_FAILURE = """create("foo") = "0"

put foo never

put missing-from-failure yes
get foo --prefix --limit=1

"""

TXN_EMPTY_COMPARE = """
put t1 a
put t2 b


"""

SCENARIO = [
    Step("put", "foo", "bar", expect=["OK"]),
    Step("put", "foo1", "bar1"),
    Step("put", "foo2", "bar2"),
    Step("put", "foo3", "bar3"),
    Step("put", "zoo", "zval"),
    Step("put", "a/b", "c"),
    Step("put", "a/c", "d"),
    Step("get", "foo", expect=["foo\nbar\n"]),
    Step("get", "foo", "-w", "json", expect=['"revision":8', '"count":1']),
    Step("get", "foo", "-w", "fields", expect=['"Revision" : 8', '"Version" : 1']),
    Step("get", "missing"),
    Step("get", "missing", "-w", "json", expect=['"revision":8']),
    Step("get", "foo", "--prefix", expect=["foo\nbar\nfoo1\nbar1\nfoo2\nbar2\nfoo3\nbar3\n"]),
    Step("get", "foo", "foo3", expect=["foo2\nbar2\n"]),
    Step("get", "foo", "--prefix", "--keys-only", expect=["foo1\n"]),
    Step("get", "foo", "--prefix", "--print-value-only", expect=["bar\nbar1\n"]),
    Step("get", "foo", "--prefix", "--limit", "2", expect=["foo1\nbar1\n"]),
    Step("get", "foo", "--prefix", "--limit", "2", "-w", "json",
         expect=['"more":true', '"count":4']),
    Step("get", "foo", "--prefix", "-w", "json", expect=['"count":4']),
    Step("get", "foo2", "--from-key", expect=["zoo\nzval\n"]),
    Step("get", "", "--from-key", "--keys-only", expect=["a/b\n"]),
    Step("get", "a", "--from-key", "--limit", "3", "--keys-only"),
    Step("get", "foo", "--prefix", "--sort-by", "VALUE", "--order", "DESCEND"),
    Step("get", "foo", "--prefix", "--sort-by", "KEY", "--order", "DESCEND",
         expect=["foo3\nbar3\nfoo2"]),
    Step("get", "foo", "--prefix", "--sort-by", "MODIFY", "--order", "ASCEND"),
    Step("get", "foo", "--prefix", "--sort-by", "CREATE", "--order", "DESCEND"),
    Step("put", "foo", "bar-v2", expect=["OK"]),
    Step("put", "foo", "bar-v3", "--prev-kv", expect=["bar-v2"]),
    Step("put", "foo2", "bar2-v2", "--prev-kv", "-w", "json", expect=['"revision":11', '"value":"YmFyMg=="']),
    Step("get", "foo", "--prefix", "--sort-by", "VERSION", "--order", "DESCEND"),
    Step("get", "foo", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND", "-w", "json"),
    Step("get", "foo", "--rev", "2", expect=["foo\nbar\n"]),
    Step("get", "foo", "--prefix", "--rev", "3", "-w", "json", expect=['"count":2']),
    Step("get", "foo", "--consistency", "s", expect=["bar-v3"]),
    Step("txn", "-i", stdin=TXN_SUCCESS, expect=["SUCCESS", "txn-ok"]),
    Step("txn", "-w", "json", stdin=TXN_FAILURE,
         expect=['"revision":13', '"ResponsePut"', '"more":true']),
    Step("txn", stdin=TXN_EMPTY_COMPARE, expect=["SUCCESS\n\nOK\n\nOK\n"]),
    Step("get", "", "--from-key", "-w", "json"),
    Step("del", "missing", expect=["0"]),
    Step("del", "foo1", expect=["1"]),
    Step("del", "a/", "--prefix", "--prev-kv", expect=["2\na/b\nc\na/c\nd\n"]),
    Step("del", "foo", "--prefix", "--prev-kv", "-w", "json", expect=['"deleted":3']),
    Step("del", "t1", "t3", expect=["2"]),
    Step("get", "", "--from-key"),
    Step("put", "foo", "again", expect=["OK"]),
    Step("get", "foo", "-w", "json", expect=['"version":1']),
    Step("compaction", "5", expect=["compacted revision 5"]),
    Step("get", "foo", "--rev", "4", ok=False,
         expect=["etcdserver: mvcc: required revision has been compacted"]),
    Step("get", "foo", "--rev", "5", expect=["foo\nbar\n"]),
    Step("compaction", "3", ok=False,
         expect=["etcdserver: mvcc: required revision has been compacted"]),
    Step("get", "foo", "--rev", "1000", ok=False,
         expect=["etcdserver: mvcc: required revision is a future revision"]),
    Step("compaction", "1000", ok=False,
         expect=["etcdserver: mvcc: required revision is a future revision"]),
    Step("compaction", "--physical", "10", expect=["compacted revision 10"]),
    Step("get", "foo3", "--rev", "10", expect=["bar3"]),
    Step("put", "", "v", ok=False, expect=["etcdserver: key is not provided"]),
    Step("get", "", "--from-key", "-w", "json"),
    Step("put", "foo", "--ignore-value", expect=["OK"]),
    Step("get", "foo", "-w", "json", expect=['"version":2', '"value":"YWdhaW4="']),
    Step("put", "nokey", "--ignore-value", ok=False, expect=["etcdserver: key not found"]),
    Step("get", "", "--from-key", "--hex", expect=["\\x66\\x6f\\x6f\n"]),
    Step("del", "foo", "--from-key", "--prev-kv"),
    Step("get", "", "--from-key", "--rev", "0", "-w", "json"),
]

_MASKS = [
    (re.compile(r'"(cluster_id|member_id|raft_term)":\d+'), r'"\1":<masked>'),
    (re.compile(r'"(ClusterID|MemberID|RaftTerm)" : \d+'), r'"\1" : <masked>'),
]
# etcdctl's retry interceptor logs the gRPC status; keep code and message only.
_GRPC_ERROR = re.compile(r'rpc error: code = (\w+) desc = ([^"]*)')


def mask(text):
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def normalize_stderr(stderr):
    """Keeps what a user relies on: 'Error:' lines and the gRPC code/message."""
    kept = []
    for line in stderr.splitlines():
        if line.startswith("Error:"):
            kept.append(line)
        else:
            m = _GRPC_ERROR.search(line)
            if m:
                kept.append(f"grpc {m.group(1)}: {m.group(2)}")
    return "\n".join(sorted(set(kept)))


def run_scenario(server, keep=False, extra_flags=()):
    """Returns [(step, rc, masked stdout, normalized stderr)] from a fresh cluster."""
    results = []
    with cluster.Cluster(server, size=1, keep=keep, extra_flags=extra_flags) as c:
        for step in SCENARIO:
            r = c.etcdctl(*step.args, stdin=step.stdin)
            results.append((step, r.returncode, mask(r.stdout), normalize_stderr(r.stderr)))
    return results


def check_expectations(label, results):
    failures = []
    for step, rc, out, err in results:
        problems = []
        if step.ok != (rc == 0):
            problems.append(f"exit status {rc}, expected {'0' if step.ok else 'non-zero'}")
        for e in step.expect:
            if e not in out and e not in err:
                problems.append(f"missing {e!r}")
        if problems:
            failures.append(f"[{label}] {step}: {'; '.join(problems)}\n"
                            f"  stdout: {out!r}\n  stderr: {err!r}")
    return failures


def compare(server_results, reference_results):
    failures = []
    for (step, rc, out, err), (_, rrc, rout, rerr) in zip(server_results, reference_results):
        if (rc, out, err) != (rrc, rout, rerr):
            diff = "\n".join(difflib.unified_diff(
                f"rc={rrc}\n{rout}\n{rerr}".splitlines(),
                f"rc={rc}\n{out}\n{err}".splitlines(),
                "reference", "server", lineterm=""))
            failures.append(f"[compare] {step}: outputs differ\n{diff}")
    return failures


def main():
    parser = cluster.server_arg_parser(__doc__.splitlines()[0])
    parser.add_argument("--reference", help="reference etcd binary (e.g. /usr/bin/etcd)")
    parser.add_argument("--server-flag", action="append", default=[],
                        help="a flag for the server under test only (repeatable), "
                             "e.g. --server-flag=--h2-front=false")
    args = parser.parse_args()

    failures = []
    checks = 0
    server_results = run_scenario(args.server, args.keep, args.server_flag)
    failures += check_expectations("server", server_results)
    checks += len(SCENARIO)
    if args.reference:
        reference_results = run_scenario(args.reference, args.keep)
        failures += check_expectations("reference", reference_results)
        failures += compare(server_results, reference_results)
        checks += 2 * len(SCENARIO)

    for f in failures:
        print("FAIL " + f)
    mode = "compared with reference" if args.reference else "server only"
    print(f"etcdctl scenario: {len(SCENARIO)} steps, {mode}")
    print(f"{checks - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
