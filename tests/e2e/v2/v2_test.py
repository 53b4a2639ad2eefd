#!/usr/bin/python3
"""The v2 keys API end to end, compared with etcd 3.4.

    /usr/bin/python3 v2_test.py --server build/bin/etcdpp --reference /usr/bin/etcd

Runs one scenario against a fresh etcd 3.4 (`--enable-v2=true`) and a fresh
etcdpp with the same flag, through three clients: plain HTTP (http.client),
`ETCDCTL_API=2 etcdctl`, and Debian's python3-etcd. Every reply (status,
the v2 headers, the JSON body or the tool's output) must equal etcd's once
normalized: indexes are taken relative to the store index each server had
before the scenario (etcd's own start-up writes count in its index),
expiration times are checked to lie near now + ttl and then masked, IDs and
URLs are masked. Waits (TTL expiry, watches) poll a condition with a
deadline; nothing sleeps for a fixed time to synchronize.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVER = None
REFERENCE = None
KEEP = False
TIMEOUT = 15


class V2:
    """HTTP to one member's /v2 endpoints, with the index normalization."""

    def __init__(self, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.base = 0

    def raw(self, method, path, params=None, form=None, timeout=TIMEOUT):
        if params:
            path += "?" + urllib.parse.urlencode(params)
        headers = {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
        finally:
            conn.close()

    def call(self, method, path, params=None, form=None, timeout=TIMEOUT):
        """The normalized reply: (status, headers that matter, body)."""
        status, headers, body = self.raw(method, path, params, form, timeout)
        return self.normalize(status, headers, body)

    def rel(self, index):
        return index - self.base

    def normalize(self, status, headers, body):
        kept = {"content-type": headers.get("content-type")}
        if "x-etcd-index" in headers:
            # 0 for a request refused before it reached the store.
            index = int(headers["x-etcd-index"])
            kept["x-etcd-index"] = self.rel(index) if index else 0
        for h in ("x-raft-index", "x-raft-term", "x-etcd-cluster-id"):
            kept[h] = h in headers
        try:
            doc = json.loads(body)
        except ValueError:
            return status, kept, body
        return status, kept, self.normalize_doc(doc)

    def normalize_doc(self, doc):
        if isinstance(doc, list):
            return [self.normalize_doc(d) for d in doc]
        if not isinstance(doc, dict):
            return doc
        out = {}
        for k, v in doc.items():
            if k in ("modifiedIndex", "createdIndex"):
                out[k] = self.rel(v)
            elif k == "index" and "errorCode" in doc:
                out[k] = self.rel(v) if v else 0
            elif k == "key":
                out[k] = self.normalize_key(v)
            elif k == "cause":
                out[k] = self.normalize_cause(v)
            elif k == "expiration":
                out[k] = check_expiration(v)
            elif k == "ttl":
                # Seconds left when rendered: an expired node's prevNode shows
                # 0 (left out) or less, depending on how late the sweep ran.
                if v > 0:
                    out[k] = "ttl>0"
            else:
                out[k] = self.normalize_doc(v)
        return out

    def normalize_key(self, key):
        # In-order keys are named by the index that created them.
        return re.sub(r"/(\d{20})$", lambda m: "/#%d" % self.rel(int(m.group(1))), key)

    def normalize_cause(self, cause):
        cause = self.normalize_key(cause)
        cause = re.sub(r"\[(\d+) != (\d+)\]",
                       lambda m: "[%d != %d]" % (self.rel(int(m.group(1))), self.rel(int(m.group(2)))),
                       cause)
        return re.sub(r"cleared \[(\d+)/(\d+)\]",
                      lambda m: "cleared [%d/%d]" % (self.rel(int(m.group(1))),
                                                     self.rel(int(m.group(2)))), cause)


def check_expiration(text):
    """An RFC 3339 UTC time within a minute of now; masked once checked."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z", text)
    if not m:
        return "bad expiration " + text
    when = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return "<time>" if abs(when - time.time()) < 60 else "far expiration " + text


def wait_for(predicate, what, timeout=15):
    return cluster.wait_until(predicate, timeout, interval=0.05, what=what)


class Watch(threading.Thread):
    """A wait=true GET in the background; .result once answered."""

    def __init__(self, ep, path, params):
        super().__init__(daemon=True)
        self.ep, self.path, self.params = ep, path, dict(params, wait="true")
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = self.ep.raw("GET", self.path, self.params, timeout=30)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def get(self):
        self.join(30)
        if self.is_alive():
            raise AssertionError(f"watch on {self.path} not answered")
        if self.error:
            raise self.error
        return self.ep.normalize(*self.result)


def watchers(ep):
    return json.loads(ep.raw("GET", "/v2/stats/store")[2])["watchers"]


def http_scenario(ep):
    """Returns [(step, normalized reply)] for the plain-HTTP scenario."""
    out = []

    def step(name, method, path, params=None, form=None):
        out.append((name, ep.call(method, path, params, form)))

    step("get root empty", "GET", "/v2/keys/")
    step("set", "PUT", "/v2/keys/foo", form={"value": "bar"})
    step("set again", "PUT", "/v2/keys/foo", form={"value": "baz"})
    step("get", "GET", "/v2/keys/foo")
    step("get quorum", "GET", "/v2/keys/foo", {"quorum": "true"})
    step("value in query", "PUT", "/v2/keys/q", {"value": "from query"})
    step("noValueOnSuccess", "PUT", "/v2/keys/q", {"noValueOnSuccess": "true"}, {"value": "x"})
    step("json escaping", "PUT", "/v2/keys/esc", form={"value": "<a&b> \"q\" \u00e9\n"})
    step("create exists", "PUT", "/v2/keys/foo", {"prevExist": "false"}, {"value": "x"})
    step("create", "PUT", "/v2/keys/new", {"prevExist": "false"}, {"value": "n"})
    step("update missing", "PUT", "/v2/keys/missing", {"prevExist": "true"}, {"value": "x"})
    step("update", "PUT", "/v2/keys/new", {"prevExist": "true"}, {"value": "n2"})
    step("cas ok", "PUT", "/v2/keys/foo", {"prevValue": "baz"}, {"value": "cas1"})
    step("cas bad value", "PUT", "/v2/keys/foo", {"prevValue": "nope"}, {"value": "x"})
    step("cas bad index", "PUT", "/v2/keys/foo", {"prevIndex": str(ep.base + 1)}, {"value": "x"})
    step("cas both bad", "PUT", "/v2/keys/foo", {"prevIndex": str(ep.base + 1), "prevValue": "no"},
         {"value": "x"})
    modified = json.loads(ep.raw("GET", "/v2/keys/foo")[2])["node"]["modifiedIndex"]
    step("cas index ok", "PUT", "/v2/keys/foo", {"prevIndex": str(modified)}, {"value": "cas2"})
    step("cas empty prevValue", "PUT", "/v2/keys/foo", {"prevValue": ""}, {"value": "x"})
    step("mkdir", "PUT", "/v2/keys/dir", {"dir": "true"})
    step("mkdir again", "PUT", "/v2/keys/dir", {"dir": "true"})
    step("value on dir", "PUT", "/v2/keys/dir", form={"value": "x"})
    step("file under dir", "PUT", "/v2/keys/dir/a/b", form={"value": "ab"})
    step("file 2", "PUT", "/v2/keys/dir/c", form={"value": "c"})
    step("hidden", "PUT", "/v2/keys/dir/_hidden", form={"value": "h"})
    step("under a file", "PUT", "/v2/keys/foo/sub", form={"value": "x"})
    step("get under a file", "GET", "/v2/keys/foo/sub")
    step("get missing", "GET", "/v2/keys/nothing/here")
    step("get dir", "GET", "/v2/keys/dir", {"sorted": "true"})
    step("get dir recursive", "GET", "/v2/keys/dir", {"recursive": "true", "sorted": "true"})
    step("get hidden", "GET", "/v2/keys/dir/_hidden")
    step("delete dir not dir", "DELETE", "/v2/keys/dir")
    step("delete dir not empty", "DELETE", "/v2/keys/dir", {"dir": "true"})
    step("delete file with dir", "DELETE", "/v2/keys/dir/c", {"dir": "true"})
    step("cad bad", "DELETE", "/v2/keys/q", {"prevValue": "nope"})
    step("cad dir", "DELETE", "/v2/keys/dir", {"prevValue": "x"})
    step("cad ok", "DELETE", "/v2/keys/q", {"prevValue": "x"})
    step("cad index bad", "DELETE", "/v2/keys/new", {"prevIndex": str(ep.base + 1)})
    step("delete recursive", "DELETE", "/v2/keys/dir", {"recursive": "true"})
    step("delete missing", "DELETE", "/v2/keys/dir")
    step("root put", "PUT", "/v2/keys/", form={"value": "x"})
    step("root delete", "DELETE", "/v2/keys/", {"recursive": "true"})
    step("bad ttl", "PUT", "/v2/keys/t", form={"value": "x", "ttl": "abc"})
    step("bad prevExist", "PUT", "/v2/keys/t", {"prevExist": "maybe"}, {"value": "x"})
    step("bad recursive", "GET", "/v2/keys/", {"recursive": "yes"})
    step("bad prevIndex", "PUT", "/v2/keys/t", {"prevIndex": "-1"}, {"value": "x"})
    step("wait on PUT", "PUT", "/v2/keys/t", {"wait": "true"}, {"value": "x"})
    step("refresh with value", "PUT", "/v2/keys/t", {"refresh": "true"}, {"value": "x", "ttl": "5"})
    step("refresh no ttl", "PUT", "/v2/keys/t", {"refresh": "true", "prevExist": "true"})
    step("method", "PATCH", "/v2/keys/foo")

    # In-order keys.
    for item in ("job1", "job2", "job3"):
        step("post " + item, "POST", "/v2/keys/queue", form={"value": item})
    step("queue sorted", "GET", "/v2/keys/queue", {"sorted": "true"})
    step("post under a file", "POST", "/v2/keys/foo", form={"value": "x"})

    # TTLs: a key and a directory that expire, a refresh that keeps a key.
    step("ttl set", "PUT", "/v2/keys/ttl", form={"value": "t", "ttl": "2"})
    step("ttl get", "GET", "/v2/keys/ttl")
    step("ttl dir", "PUT", "/v2/keys/ttldir", form={"dir": "true", "ttl": "1"})
    step("refresh", "PUT", "/v2/keys/ttl", {"refresh": "true", "prevExist": "true"}, {"ttl": "2"})
    step("ttl to permanent", "PUT", "/v2/keys/new", {"prevExist": "true"}, {"value": "perm"})
    watch_expire = Watch(ep, "/v2/keys/ttl", {})
    watch_expire.start()
    wait_for(lambda: watchers(ep) == 1, "the expiry watch registered")
    wait_for(lambda: ep.raw("GET", "/v2/keys/ttl")[0] == 404, "ttl key expired")
    wait_for(lambda: ep.raw("GET", "/v2/keys/ttldir")[0] == 404, "ttl dir expired")
    out.append(("expire watch", watch_expire.get()))
    # The index after both expiries: each expiry is one index.
    step("after expiry", "GET", "/v2/keys/ttl")

    # A watch woken by a later write; a recursive one; one in the past.
    w = Watch(ep, "/v2/keys/w", {})
    w.start()
    wait_for(lambda: watchers(ep) == 1, "the watch registered")
    step("write for watch", "PUT", "/v2/keys/w", form={"value": "woken"})
    out.append(("watch woken", w.get()))
    wr = Watch(ep, "/v2/keys/wdir", {"recursive": "true"})
    wr.start()
    wait_for(lambda: watchers(ep) == 1, "the recursive watch registered")
    step("write below", "PUT", "/v2/keys/wdir/x/y", form={"value": "deep"})
    out.append(("recursive watch woken", wr.get()))
    step("wait index past", "GET", "/v2/keys/foo", {"wait": "true", "waitIndex": str(ep.base + 2)})
    step("wait index past recursive", "GET", "/v2/keys/",
         {"wait": "true", "recursive": "true", "waitIndex": str(ep.base + 5)})
    wd = Watch(ep, "/v2/keys/wdir/x/y", {})
    wd.start()
    wait_for(lambda: watchers(ep) == 1, "the watch below a dir registered")
    step("delete watched dir", "DELETE", "/v2/keys/wdir", {"recursive": "true"})
    out.append(("watch of a deleted dir's child", wd.get()))

    # More than 1000 events: the oldest are gone (401).
    conn = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=TIMEOUT)
    for i in range(1005):
        conn.request("PUT", "/v2/keys/many", body="value=%d" % i,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        resp.read()
        if resp.status not in (200, 201):
            raise AssertionError(f"write {i} failed with {resp.status}")
    conn.close()
    step("outdated waitIndex", "GET", "/v2/keys/many",
         {"wait": "true", "waitIndex": str(ep.base + 3)})
    step("recent waitIndex", "GET", "/v2/keys/many",
         {"wait": "true", "waitIndex": str(json.loads(ep.raw("GET", "/v2/keys/many")[2])
                                           ["node"]["modifiedIndex"])})
    step("root sorted", "GET", "/v2/keys/", {"sorted": "true"})

    # Cluster endpoints, by shape.
    status, headers, body = ep.raw("GET", "/v2/members")
    members = json.loads(body)["members"]
    out.append(("members", (status, sorted(members[0].keys()), len(members),
                            members[0]["clientURLs"] == [ep.url])))
    status, _, body = ep.raw("GET", "/v2/machines")
    out.append(("machines", (status, body == ep.url)))
    for stats in ("self", "store"):
        status, _, body = ep.raw("GET", "/v2/stats/" + stats)
        out.append(("stats " + stats, (status, "leaderInfo" in body if stats == "self"
                                       else sorted(json.loads(body).keys()))))
    status, _, body = ep.raw("GET", "/v2/stats/leader")
    out.append(("stats leader", (status, sorted(json.loads(body).keys()))))
    return out


def etcdctl(ep, *args, check=False):
    env = dict(os.environ, ETCDCTL_API="2")
    p = subprocess.run([cluster.ETCDCTL, "--endpoints", ep.url, *args], env=env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    return p.returncode, normalize_ctl(ep, p.stdout), normalize_ctl(ep, p.stderr)


def normalize_ctl(ep, text):
    # etcdctl's errors end with the store index: "Error:  105: Key already exists (/x) [12]".
    return re.sub(r"\[(\d+)\]$", lambda m: "[%d]" % ep.rel(int(m.group(1))), text.strip(),
                  flags=re.M)


def ctl_scenario(ep):
    out = []
    for args in (("set", "/ctl/a", "1"), ("get", "/ctl/a"), ("mk", "/ctl/a", "2"),
                 ("mk", "/ctl/b", "2"), ("mkdir", "/ctl/d"), ("mkdir", "/ctl/d"),
                 ("set", "/ctl/d/x", "3"), ("ls", "--recursive", "--sort", "/ctl"),
                 ("update", "/ctl/a", "4"), ("update", "/ctl/zz", "4"),
                 ("set", "--swap-with-value", "4", "/ctl/a", "5"),
                 ("set", "--swap-with-value", "4", "/ctl/a", "6"),
                 ("rm", "/ctl/d"), ("rmdir", "/ctl/d"), ("rm", "--recursive", "/ctl/d"),
                 ("get", "/ctl/d"), ("rm", "/ctl/b"), ("ls", "--sort", "/ctl"),
                 ("get", "/ctl"), ("updatedir", "/ctl/a", "--ttl", "5")):
        out.append((" ".join(args), etcdctl(ep, *args)))

    # watch: one event, printed when a later write happens.
    env = dict(os.environ, ETCDCTL_API="2")
    watcher = subprocess.Popen([cluster.ETCDCTL, "--endpoints", ep.url, "watch", "/ctl/w"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: watchers(ep) == 1, "etcdctl watch registered")
        etcdctl(ep, "set", "/ctl/w", "seen")
        stdout, stderr = watcher.communicate(timeout=TIMEOUT)
        out.append(("watch", (watcher.returncode, stdout.strip())))
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()

    # exec-watch: runs the command for each change; stopped by its pid.
    execw = subprocess.Popen([cluster.ETCDCTL, "--endpoints", ep.url, "exec-watch", "/ctl/e", "--",
                              "sh", "-c", "echo \"$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE\""],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             start_new_session=True)
    try:
        wait_for(lambda: watchers(ep) == 1, "etcdctl exec-watch registered")
        etcdctl(ep, "set", "/ctl/e", "ran")
        line = []
        reader = threading.Thread(target=lambda: line.append(execw.stdout.readline()), daemon=True)
        reader.start()
        reader.join(TIMEOUT)
        out.append(("exec-watch", line[0].strip() if line else "no output"))
    finally:
        os.killpg(execw.pid, signal.SIGKILL)
        execw.wait()
    return out


def python_etcd_scenario(ep):
    try:
        import etcd
    except ImportError:
        raise AssertionError("the python v2 client is missing: install Debian's python3-etcd") from None
    client = etcd.Client(host="127.0.0.1", port=ep.port, read_timeout=TIMEOUT)
    out = []

    def node(r):
        return (r.key, r.value, r.dir, ep.rel(r.modifiedIndex), ep.rel(r.createdIndex), r.action)

    out.append(("write", node(client.write("/py/a", "one"))))
    out.append(("read", node(client.read("/py/a"))))
    out.append(("cas", node(client.test_and_set("/py/a", "two", "one"))))
    try:
        client.test_and_set("/py/a", "three", "one")
        out.append(("cas fail", "no error"))
    except ValueError as e:
        out.append(("cas fail", (type(e).__name__, ep.normalize_cause(str(e)))))
    try:
        client.read("/py/missing")
    except etcd.EtcdKeyNotFound as e:
        out.append(("missing", ep.normalize_cause(str(e))))
    for v in ("x", "y", "z"):
        client.write("/py/queue", v, append=True)
    queue = client.read("/py/queue", sorted=True)
    out.append(("queue", [(ep.normalize_key(c.key), c.value) for c in queue.children]))
    out.append(("ttl", client.write("/py/ttl", "t", ttl=30).ttl))
    result = []
    index = client.read("/py/a").modifiedIndex
    t = threading.Thread(target=lambda: result.append(
        client.read("/py/a", wait=True, waitIndex=index + 1, timeout=TIMEOUT)), daemon=True)
    t.start()
    wait_for(lambda: watchers(ep) == 1, "python-etcd watch registered")
    client.write("/py/a", "woken")
    t.join(TIMEOUT)
    out.append(("wait", node(result[0]) if result else "not woken"))
    client.delete("/py", recursive=True)
    try:
        client.read("/py")
        out.append(("deleted", "still there"))
    except etcd.EtcdKeyNotFound:
        out.append(("deleted", "gone"))
    return out


def run_all(server, flags):
    with cluster.Cluster(server, size=1, keep=KEEP, extra_flags=flags) as c:
        ep = V2(c.members[0].client_port)
        # etcd writes its membership and cluster version into the v2 store
        # at start: wait until that is done, then take the base index.
        wait_for(lambda: json.loads(ep.raw("GET", "/version")[2])["etcdcluster"] != "not_decided",
                 "cluster version decided", timeout=30)
        ep.base = int(ep.raw("GET", "/v2/keys/")[1]["x-etcd-index"])
        results = {"http": http_scenario(ep)}
        ep.base = int(ep.raw("GET", "/v2/keys/")[1]["x-etcd-index"])
        results["etcdctl"] = ctl_scenario(ep)
        ep.base = int(ep.raw("GET", "/v2/keys/")[1]["x-etcd-index"])
        results["python-etcd"] = python_etcd_scenario(ep)
        # Survives a restart: the tree and its index.
        before = ep.raw("GET", "/v2/keys/", {"recursive": "true", "sorted": "true"})
        c.stop(0)
        c.restart(0)
        after = ep.raw("GET", "/v2/keys/", {"recursive": "true", "sorted": "true"})
        results["restart"] = [("same tree", (before[0], before[2]) == (after[0], after[2])),
                              ("same index", before[1]["x-etcd-index"] == after[1]["x-etcd-index"])]
        # The event history too, after kill -9: waitIndex before the restart
        # is answered from it at once, as etcd answers from its v2 snapshot
        # and WAL.
        ep.base = int(ep.raw("GET", "/v2/keys/")[1]["x-etcd-index"])
        first = json.loads(ep.raw("PUT", "/v2/keys/hist/a", form={"value": "h1"})[2])
        ep.raw("PUT", "/v2/keys/hist/b", form={"value": "h2"})
        ep.raw("DELETE", "/v2/keys/hist/a")
        index = first["node"]["modifiedIndex"]
        c.kill(0)
        c.spawn(0)
        c.wait_ready(0)
        # Status and event are compared; X-Etcd-Index is not: etcd writes
        # its member attributes into its v2 store again at every start.
        replies = [(f"waitIndex {ep.rel(i)}", ep.call("GET", path, {"wait": "true", "waitIndex": i,
                                                                     "recursive": "true"}))
                   for path, i in (("/v2/keys/hist/a", index), ("/v2/keys/hist", index + 1),
                                   ("/v2/keys/hist/a", index + 1))]
        results["history"] = [(name, (status, body)) for name, (status, _, body) in replies]
        results["history index"] = [headers.get("x-etcd-index") for _, (_, headers, _) in replies]
        return results


class V2Test(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        flags = ["--enable-v2=true"]
        cls.ours = run_all(SERVER, flags)
        cls.theirs = run_all(REFERENCE, flags) if REFERENCE else None

    def compare(self, client):
        ours = self.ours[client]
        if self.theirs is None:
            self.fail("no --reference etcd to compare with")
        theirs = self.theirs[client]
        self.assertEqual([n for n, _ in ours], [n for n, _ in theirs])
        for (name, mine), (_, ref) in zip(ours, theirs):
            with self.subTest(step=name):
                self.assertEqual(mine, ref, f"step {name!r} differs from etcd 3.4")

    def test_http_matches_etcd(self):
        self.compare("http")

    def test_etcdctl_matches_etcd(self):
        self.compare("etcdctl")

    def test_python_etcd_matches_etcd(self):
        self.compare("python-etcd")

    def test_restart_keeps_v2_tree(self):
        self.assertEqual(self.ours["restart"], [("same tree", True), ("same index", True)])

    def test_event_history_survives_kill(self):
        self.compare("history")
        self.assertEqual([body["action"] for _, (_, body) in self.ours["history"]],
                         ["set", "set", "delete"])
        # etcdpp's index after the restart is the three writes' (no writes of its own).
        self.assertEqual(self.ours["history index"], [3, 3, 3])

    def test_three_members(self):
        """Replication: a write on one member is read on another, a follower's
        watch sees a write made elsewhere, TTLs expire through the leader, and
        the tree survives kill -9 of every member."""
        with cluster.Cluster(SERVER, size=3, keep=KEEP, extra_flags=["--enable-v2=true"]) as c:
            eps = [V2(m.client_port) for m in c.members]
            status, _, _ = eps[0].raw("PUT", "/v2/keys/r/a", form={"value": "1"})
            self.assertEqual(status, 201)
            status, _, body = eps[1].raw("GET", "/v2/keys/r/a", {"quorum": "true"})
            self.assertEqual((status, json.loads(body)["node"]["value"]), (200, "1"))
            w = Watch(eps[2], "/v2/keys/r", {"recursive": "true"})
            w.start()
            wait_for(lambda: watchers(eps[2]) == 1, "follower watch registered")
            eps[0].raw("PUT", "/v2/keys/r/b", form={"value": "2"})
            status, _, body = w.get()
            self.assertEqual((status, body["action"], body["node"]["key"]), (200, "set", "/r/b"))
            eps[1].raw("PUT", "/v2/keys/r/ttl", form={"value": "t", "ttl": "1"})
            for ep in eps:
                wait_for(lambda ep=ep: ep.raw("GET", "/v2/keys/r/ttl")[0] == 404,
                         "ttl key expired on every member")
            before = [ep.raw("GET", "/v2/keys/", {"recursive": "true", "sorted": "true"})
                      for ep in eps]
            self.assertEqual(len({(b[2], b[1]["x-etcd-index"]) for b in before}), 1,
                             "members disagree on the v2 tree")
            c.kill_all_and_restart()
            after = eps[2].raw("GET", "/v2/keys/", {"recursive": "true", "sorted": "true",
                                                    "quorum": "true"})
            self.assertEqual((after[2], after[1]["x-etcd-index"]),
                             (before[0][2], before[0][1]["x-etcd-index"]))

    def test_disabled_by_default(self):
        with cluster.Cluster(SERVER, size=1, keep=KEEP) as c:
            status, _, body = V2(c.members[0].client_port).raw("GET", "/v2/keys/")
            self.assertEqual((status, body), (404, "404 page not found\n"))


if __name__ == "__main__":
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--reference", help="etcd 3.4 to compare with")
    args, rest = p.parse_known_args()
    SERVER, REFERENCE, KEEP = args.server, args.reference, args.keep
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
