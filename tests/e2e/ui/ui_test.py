#!/usr/bin/python3
"""The web console (/ui) in a real headless browser, against real members.

    /usr/bin/python3 ui_test.py --server build/bin/etcdpp \
        [--chromium /usr/bin/chromium] [--screenshots DIR]

Debian's chromium runs headless and is driven over its DevTools protocol
(python3-websocket), as a user would use the console: open /ui, walk the
key tree to keys etcdctl wrote, read a JSON value and its history, save an
edit (compare-and-swap), see a save refused after etcdctl changed the key
meanwhile, edit a binary value as hex and as base64, delete with the
confirmation, watch a prefix while etcdctl writes and replay its history
from a past revision (and be told when it is compacted), read the cluster
and leases pages. A screenshot of each page is
saved. The browser's network log is recorded throughout: outside the
steps where the test clicks Save, Create or Delete, every request must be a
read (GET, a range, a watch, status, member list, alarm GET, leases).
Then a 3-member cluster: the console of a follower lists all members,
healthy, with one leader. And --enable-ui=false answers 404.

Every wait is a poll of a condition with a deadline.
"""

import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

try:
    import websocket  # Debian: python3-websocket
except ImportError:
    websocket = None

SERVER = None
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = None
WAIT = 15  # seconds for any one thing to appear in the page

# Gateway paths that only read. Anything else (put, txn, deleterange,
# compaction, lease grant/revoke, member changes, ...) writes or may.
READ_PATHS = {
    "/v3/kv/range", "/v3/watch", "/v3/maintenance/status", "/v3/cluster/member/list",
    "/v3/maintenance/alarm", "/v3/lease/leases", "/v3/lease/timetolive",
}


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


class Browser:
    """One headless chromium with one page, driven over the DevTools protocol."""

    def __init__(self, chromium, log_path):
        self.profile = tempfile.mkdtemp(prefix="etcdpp-ui-chromium-")
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--disable-component-update", "--mute-audio", "--hide-scrollbars",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "--window-size=1280,860", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")

        def devtools_port():
            if self.proc.poll() is not None:
                raise cluster.ProcessExited(f"chromium exited with {self.proc.returncode}")
            with open(port_file) as f:
                return int(f.readline().strip())
        port = cluster.wait_until(devtools_port, 30, what="chromium's DevTools port")

        def page_target():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            return pages[0] if pages else None
        target = cluster.wait_until(page_target, 15, what="chromium's page")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=WAIT,
                                              suppress_origin=True)
        self.next_id = 0
        self.requests = []     # (phase, method, url, post data)
        self.exceptions = []   # uncaught exceptions in the page
        self.csp_reports = []  # console messages about the policy
        self.phase = "load"
        self.paused = []       # Fetch.requestPaused events not handled yet
        self.command("Network.enable")
        self.command("Runtime.enable")
        self.command("Page.enable")
        self.command("Emulation.setDeviceMetricsOverride",
                     width=1280, height=860, deviceScaleFactor=1, mobile=False)

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _on_event(self, message):
        method = message.get("method")
        params = message.get("params", {})
        if method == "Network.requestWillBeSent":
            req = params["request"]
            self.requests.append((self.phase, req["method"], req["url"], req.get("postData", "")))
        elif method == "Fetch.requestPaused":
            self.paused.append(params)
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(params["exceptionDetails"])

    def command(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == my_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._on_event(message)

    def intercept(self, patterns, handler):
        """Pauses requests matching `patterns`; handler(paused) answers each
        (with Fetch.fulfillRequest or Fetch.continueRequest) while the test waits."""
        self.handler = handler
        self.command("Fetch.enable", patterns=[{"urlPattern": p} for p in patterns])

    def answer_paused(self):
        while self.paused:
            self.handler(self.paused.pop(0))

    def js(self, expression):
        """Evaluates `expression` in the page (awaiting a promise) and returns its value."""
        self.answer_paused()
        result = self.command("Runtime.evaluate", expression=expression,
                              awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_js(self, expression, what, timeout=WAIT):
        return cluster.wait_until(lambda: self.js(expression), timeout, interval=0.1, what=what)

    def navigate(self, url):
        self.command("Page.navigate", url=url)
        self.wait_js("document.readyState === 'complete'", f"{url} loaded")

    def click(self, selector):
        self.wait_js(f"!!document.querySelector({json.dumps(selector)})", f"element {selector}")
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def type_into(self, selector, text):
        self.wait_js(f"!!document.querySelector({json.dumps(selector)})", f"element {selector}")
        self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                f" e.value = {json.dumps(text)}; e.dispatchEvent(new Event('input')); }})()")

    def text(self, selector):
        return self.js(f"document.querySelector({json.dumps(selector)})?.textContent ?? null")

    def wait_text(self, selector, needle, timeout=WAIT):
        return self.wait_js(
            f"(document.querySelector({json.dumps(selector)})?.textContent ?? '')"
            f".includes({json.dumps(needle)})", f"{selector} showing {needle!r}", timeout)

    def screenshot(self, name):
        if not SCREENSHOTS:
            return
        os.makedirs(SCREENSHOTS, exist_ok=True)
        data = self.command("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(SCREENSHOTS, name + ".png"), "wb") as f:
            f.write(base64.b64decode(data))


def tree_dir(prefix):
    return f'li[data-prefix="{b64(prefix)}"] > .node'


def tree_key(key):
    return f'li[data-key="{b64(key)}"] > .node'


def gateway(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(body))
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def fetch(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class ConsoleTest(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="etcdpp-ui-")
        self.browser = None

    def tearDown(self):
        if self.browser is not None:
            self.browser.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def base_dir(self, name):
        path = os.path.join(self.workdir, name)
        os.makedirs(path)
        return path

    def start_browser(self):
        self.browser = Browser(CHROMIUM, os.path.join(self.workdir, "chromium.log"))
        return self.browser

    def assert_only_reads(self, allowed_writes):
        """Every request outside the named phases is a read; each named phase wrote."""
        wrote = set()
        for phase, method, url, body in self.browser.requests:
            path = urllib.parse.urlsplit(url).path
            if url.startswith("data:") or method in ("GET", "OPTIONS"):
                continue
            read = path in READ_PATHS
            if path == "/v3/maintenance/alarm":
                action = json.loads(body or "{}").get("action", "GET")
                read = action in ("GET", 0)
            if read:
                continue
            self.assertIn(phase, allowed_writes,
                          f"the console wrote ({method} {path} {body}) during {phase!r},"
                          " which the test did not cause")
            self.assertIn(path, allowed_writes[phase], f"unexpected write {path} during {phase}")
            wrote.add(phase)
        self.assertEqual(wrote, set(allowed_writes), "a write the test clicked was not sent")

    def test_console_single_member(self):
        with cluster.Cluster(SERVER, size=1, base_dir=self.base_dir("c1")) as c:
            port = c.members[0].client_port
            ctl = lambda *args: c.etcdctl(*args, check=True).stdout  # noqa: E731

            # --- what the console serves: types, caching, security headers
            status, headers, _ = fetch(port, "/ui")
            self.assertEqual((status, headers.get("location")), (301, "/ui/"))
            status, headers, body = fetch(port, "/ui/")
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
            csp = headers["content-security-policy"]
            self.assertIn("script-src 'self'", csp)
            self.assertNotIn("unsafe-inline", csp)
            self.assertNotIn("unsafe-eval", csp)
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            self.assertIn(b'<script type="module" src="app.js">', body)
            status, headers, _ = fetch(port, "/ui/app.js")
            self.assertEqual((status, headers["content-type"]), (200, "text/javascript; charset=utf-8"))
            status, again, body = fetch(port, "/ui/app.js", {"If-None-Match": headers["etag"]})
            self.assertEqual((status, body), (304, b""))
            self.assertEqual(fetch(port, "/ui/style.css")[1]["content-type"], "text/css; charset=utf-8")
            self.assertEqual(fetch(port, "/ui/nope.js")[0], 404)
            # The binary serves the checked-in files byte for byte.
            static = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "..", "..", "..", "src", "ui", "static")
            for name in sorted(os.listdir(static)):
                with open(os.path.join(static, name), "rb") as f:
                    self.assertEqual(fetch(port, "/ui/" + name)[2], f.read(), name)

            # --- keys written by the real etcdctl
            ctl("put", "/app/config/db", '{"host":"a","port":5432,"v":1}')
            ctl("put", "/app/config/db", '{"host":"a","port":5432,"v":2}')
            ctl("put", "/app/config/db", '{"host":"a","port":5432,"v":3}')
            ctl("put", "/app/config/cache", "lru")
            ctl("put", "/app/name", "hello console")
            # Sibling directories found through narrow windows (ns09/ then
            # ns10/ needs a wider one), a leaf between them, and a last
            # directory found only by the range to the end of the level.
            wide = ([f"/w/ns{i:02d}/p{j}" for i in range(12) for j in range(3)]
                    + ["/w/ns05", "/w/~last/k"])
            ops = [{"request_put": {"key": b64(k), "value": b64("x")}} for k in wide]
            self.assertEqual(gateway(port, "/v3/kv/txn", {"success": ops})[0], 200)
            # More keys in one directory than one listing request returns.
            for first in range(0, 250, 125):
                ops = [{"request_put": {"key": b64(f"/bulk/k{i:04d}"), "value": b64("x")}}
                       for i in range(first, first + 125)]
                self.assertEqual(gateway(port, "/v3/kv/txn", {"success": ops})[0], 200)

            b = self.start_browser()
            url = f"http://127.0.0.1:{port}/ui/"
            b.navigate(url)

            # --- the tree: "/" → "app/" → "config/" → "db", with counts
            b.wait_text(f'li[data-prefix=""] > .node .count', "291")
            b.click(tree_dir("/"))
            b.wait_js(f"!!document.querySelector('{tree_dir('/app/')}')", "app/ in the tree")
            self.assertIsNotNone(b.js(f"document.querySelector('{tree_dir('/bulk/')}')"))
            b.wait_text(tree_dir("/bulk/") + " .count", "250")
            b.wait_text(tree_dir("/app/") + " .count", "3")
            b.click(tree_dir("/app/"))
            b.click(tree_dir("/app/config/"))
            b.click(tree_key("/app/config/db"))
            b.wait_text("#key-value", '"v": 3')
            self.assertEqual(b.js("document.querySelector('#key-value').dataset.mode"), "json")
            self.assertEqual(b.text("#key-version"), "3")
            # History: every version back to the creation.
            b.click("#history-btn")
            b.wait_text("#history-status", "created at revision")
            self.assertEqual(b.js("document.querySelectorAll('#history tbody tr').length"), 3)
            b.screenshot("keys")
            # A directory bigger than one listing page is listed in pages.
            b.click(tree_dir("/bulk/"))
            b.wait_js(f"!!document.querySelector('{tree_key('/bulk/k0049')}')", "the first page of /bulk/")
            self.assertIsNone(b.js(f"document.querySelector('{tree_key('/bulk/k0050')}')"))
            b.click(f'li[data-prefix="{b64("/bulk/")}"] > ul > li > button.more')
            b.wait_js(f"!!document.querySelector('{tree_key('/bulk/k0099')}')", "the second page of /bulk/")

            # Every entry of a level, in key order, whichever window found it.
            b.click(tree_dir("/w/"))
            b.wait_js(f"!!document.querySelector('{tree_dir('/w/~last/')}')", "the whole /w/ level")
            listed = b.js(f"[...document.querySelectorAll('li[data-prefix=\"{b64('/w/')}\"] > ul > li')]"
                          ".map(li => { const n = li.querySelector(':scope > .node');"
                          " const count = n.querySelector('.count')?.textContent ?? '';"
                          " return n.textContent.slice(1, n.textContent.length - count.length); })")
            want = ([f"ns{i:02d}/" for i in range(6)] + ["ns05"] + [f"ns{i:02d}/" for i in range(6, 12)]
                    + ["~last/"])
            want.sort()
            self.assertEqual(listed, want)

            # --- compare-and-swap edit that succeeds
            b.click("#edit-btn")
            b.type_into("#edit-value", '{"host":"b","port":5432}')
            b.phase = "save"
            b.click("#save-btn")
            b.wait_text("#key-message", "Saved at revision")
            # Shown again from the server: the next edit compares against the new revision.
            b.wait_text("#key-value", '"host": "b"')
            b.phase = "after save"
            self.assertEqual(ctl("get", "--print-value-only", "/app/config/db").strip(),
                             '{"host":"b","port":5432}')

            # --- an edit refused because etcdctl changed the key meanwhile
            b.click("#reload-btn")
            b.wait_text("#key-value", '"host": "b"')
            b.click("#edit-btn")
            b.type_into("#edit-value", "mine")
            ctl("put", "/app/config/db", "theirs")
            b.phase = "conflicting save"
            b.click("#save-btn")
            b.wait_text("#key-message", "changed since you opened it")
            b.phase = "after conflicting save"
            self.assertEqual(ctl("get", "--print-value-only", "/app/config/db").strip(), "theirs")
            b.screenshot("key-conflict")

            # --- a binary value: shown as a hex dump, edited as hex or base64
            blob = bytes([0, 1, 2, 0xff, 0xfe]) + b"etcd"
            self.assertEqual(gateway(port, "/v3/kv/put", {"key": b64("/bin/blob"), "value": b64(blob)})[0], 200)
            blob_hash = b64("/bin/blob").rstrip("=").replace("+", "-").replace("/", "_")
            b.navigate(url + "#/key/" + blob_hash)
            b.wait_text("#key-value", "00 01 02 ff fe 65 74 63 64")
            self.assertEqual(b.js("document.querySelector('#key-value').dataset.mode"), "hex")
            self.assertEqual(b.js("[...document.querySelectorAll('#value-mode option')].map(o => o.value)"), ["hex"])
            b.click("#edit-btn")
            b.wait_js("!!document.querySelector('#edit-value')", "the binary editor")
            # Not text: offered as hex (the default) or base64 only.
            self.assertEqual(b.js("[...document.querySelectorAll('#edit-format option')].map(o => o.value)"),
                             ["hex", "base64"])
            self.assertEqual(b.js("document.querySelector('#edit-value').value"), "00 01 02 ff fe 65 74 63 64")
            # Input that is not hex is refused in the page: nothing is sent.
            b.type_into("#edit-value", "00 0g")
            b.phase = "invalid hex save"
            b.click("#save-btn")
            b.wait_text("#key-message", "Not saved: not hex")
            b.type_into("#edit-value", "de ad\nbe ef 00")
            b.phase = "hex save"
            b.click("#save-btn")
            b.wait_text("#key-message", "Saved at revision")
            b.wait_text("#key-value", "de ad be ef 00")
            b.phase = "after hex save"
            value_of = lambda key: base64.b64decode(  # noqa: E731
                gateway(port, "/v3/kv/range", {"key": b64(key)})[1]["kvs"][0].get("value", ""))
            self.assertEqual(value_of("/bin/blob"), b"\xde\xad\xbe\xef\x00")
            # Switching the editor to base64 re-encodes the same bytes.
            b.click("#edit-btn")
            b.wait_js("!!document.querySelector('#edit-format')", "the binary editor")
            b.js("(() => { const s = document.querySelector('#edit-format'); s.value = 'base64';"
                 " s.dispatchEvent(new Event('change')); })()")
            self.assertEqual(b.js("document.querySelector('#edit-value').value"), b64(b"\xde\xad\xbe\xef\x00"))
            b.screenshot("key-binary-edit")
            b.type_into("#edit-value", b64(b"\x00\xffok\x01"))
            b.phase = "base64 save"
            b.click("#save-btn")
            b.wait_text("#key-message", "Saved at revision")
            b.phase = "after base64 save"
            self.assertEqual(value_of("/bin/blob"), b"\x00\xffok\x01")
            # Still a compare-and-swap: a binary save after another writer
            # changed the key is refused and writes nothing.
            b.click("#edit-btn")
            b.wait_js("!!document.querySelector('#edit-value')", "the binary editor")
            self.assertEqual(gateway(port, "/v3/kv/put", {"key": b64("/bin/blob"), "value": b64(b"\x07theirs")})[0], 200)
            b.type_into("#edit-value", "01 02 03")
            b.phase = "conflicting binary save"
            b.click("#save-btn")
            b.wait_text("#key-message", "changed since you opened it")
            b.phase = "after conflicting binary save"
            self.assertEqual(value_of("/bin/blob"), b"\x07theirs")
            # A text value may be edited as hex too.
            b.navigate(url + "#/key/" + b64("/app/config/db").rstrip("=").replace("+", "-").replace("/", "_"))
            b.wait_text("#key-value", "theirs")
            b.click("#edit-btn")
            b.wait_js("!!document.querySelector('#edit-format')", "the editor")
            self.assertEqual(b.js("[...document.querySelectorAll('#edit-format option')].map(o => o.value)"),
                             ["text", "hex", "base64"])
            b.js("(() => { const s = document.querySelector('#edit-format'); s.value = 'hex';"
                 " s.dispatchEvent(new Event('change')); })()")
            self.assertEqual(b.js("document.querySelector('#edit-value').value"), "74 68 65 69 72 73")
            b.click("#cancel-btn")

            # --- delete, after the confirmation
            b.click(tree_key("/app/name"))
            b.wait_text("#key-value", "hello console")
            b.click("#delete-btn")
            b.wait_js("!!document.querySelector('#delete-confirm')", "the delete confirmation")
            self.assertEqual(ctl("get", "--print-value-only", "/app/name").strip(), "hello console")
            b.phase = "delete"
            b.click("#delete-confirm-btn")
            b.wait_text("#key-message", "Deleted")
            b.phase = "after delete"
            self.assertEqual(ctl("get", "/app/name").strip(), "")

            # --- watch a prefix while etcdctl writes
            b.navigate(url + "#/watch")
            b.type_into("#watch-prefix", "/app/")
            b.click("#watch-start")
            b.wait_text("#watch-status", "watching")
            first_rev = json.loads(ctl("put", "-w", "json", "/app/live", "first"))["header"]["revision"]
            ctl("put", "/app/live", "second")
            ctl("del", "/app/live")
            ctl("put", "/other/ignored", "x")
            b.wait_js("document.querySelectorAll('#watch-rows tr').length === 3", "three watch events")
            watch_rows = ("[...document.querySelectorAll('#watch-rows tr')].map("
                          "r => [...r.children].slice(1, 5).map(td => td.textContent))")
            live = [["DELETE", "/app/live", "", str(first_rev + 2)],
                    ["PUT", "/app/live", "second", str(first_rev + 1)],
                    ["PUT", "/app/live", "first", str(first_rev)]]
            self.assertEqual(b.js(watch_rows), live)
            b.click("#watch-stop")
            # History replay: from a past revision the same events come again,
            # then the watch goes on live.
            b.type_into("#watch-from", str(first_rev))
            b.click("#watch-start")
            b.wait_text("#watch-status", f"from revision {first_rev}")
            b.wait_js("document.querySelectorAll('#watch-rows tr').length === 3", "three replayed events")
            self.assertEqual(b.js(watch_rows), live)
            ctl("put", "/app/live", "third")
            b.wait_js("document.querySelectorAll('#watch-rows tr').length === 4", "a live event after the replay")
            self.assertEqual(b.js(watch_rows)[0], ["PUT", "/app/live", "third", str(first_rev + 4)])
            b.screenshot("watch")
            b.click("#watch-stop")
            # Not a number: refused in the page, no watch is started.
            b.type_into("#watch-from", "12abc")
            b.click("#watch-start")
            b.wait_text("#watch-status", "whole number")
            # Compacted history: the server cancels the watch and the page
            # says from which revision history is kept.
            compact_at = first_rev + 2
            ctl("compaction", str(compact_at))
            b.type_into("#watch-from", str(first_rev))
            b.click("#watch-start")
            b.wait_text("#watch-status", f"history is kept from revision {compact_at} on")
            b.click("#watch-stop")

            # --- leases
            lease = ctl("lease", "grant", "300").split()[1]
            ctl("put", "--lease", lease, "/app/leased", "v")
            b.navigate(url + "#/leases")
            b.wait_text(f'tr[data-lease="{lease}"]', "/app/leased")
            ttl = b.text(f'tr[data-lease="{lease}"] td:nth-child(2)')
            self.assertTrue(ttl.endswith(" s") and 0 < int(ttl.split()[0]) <= 300, ttl)
            b.screenshot("leases")
            # The key page shows the lease and its remaining TTL.
            b.navigate(url + "#/keys")
            b.navigate(url + "#/key/" + b64("/app/leased").rstrip("=").replace("+", "-").replace("/", "_"))
            b.wait_text("#key-lease", lease)
            self.assertIn("s left of 300 s", b.text("#key-lease"))

            # --- the cluster page
            b.navigate(url + "#/cluster")
            b.wait_js("document.querySelectorAll('#members tr').length === 1", "the member list")
            b.wait_text("#members tr", "healthy")
            b.wait_text("#members tr", "leader")
            b.wait_text("#no-alarms", "none")
            self.assertRegex(b.text("#cluster-term"), r"^[1-9]\d*$")
            self.assertRegex(b.text("#cluster-db-size"), r"\d")
            # Writes while the page scrapes /metrics every 2 s: the charts
            # fill, and the requests chart sees a rate above 0.
            stop_writing = threading.Event()

            def write_until_stopped():
                n = 0
                while not stop_writing.is_set():
                    gateway(port, "/v3/kv/put", {"key": b64(f"/load/{n % 10}"), "value": b64(str(n))})
                    n += 1
            writer = threading.Thread(target=write_until_stopped, daemon=True)
            writer.start()
            try:
                b.wait_js("Number(document.querySelector('#chart-requests').dataset.points) >= 3 &&"
                          " Number(document.querySelector('#chart-requests').parentElement"
                          ".querySelector('.now').textContent.split('/')[0]) > 0",
                          "the requests/s chart showing the writes", timeout=30)
            finally:
                stop_writing.set()
                writer.join(10)
            metrics_text = fetch(port, "/metrics")[2].decode()
            for chart, metric in (("chart-leader-changes", "etcd_server_leader_changes_seen_total"),
                                  ("chart-fsync", "etcd_disk_wal_fsync_duration_seconds_count")):
                if f"\n{metric}" in metrics_text:
                    # Exported: the chart draws it (else it says it cannot).
                    self.assertGreaterEqual(int(b.js(f"document.getElementById('{chart}').dataset.points")), 1)
                else:
                    self.assertIn("not exported", b.text(f"#{chart} ~ .note"))
            b.screenshot("cluster")

            # --- what the browser did on its own
            self.assertEqual(b.exceptions, [], "uncaught errors in the page")
            # The policy holds in the browser: an inline script does not run.
            b.js("(() => { const s = document.createElement('script');"
                 " s.textContent = 'window.inlineRan = true'; document.body.append(s); })()")
            self.assertIsNone(b.js("window.inlineRan ?? null"))
            self.assertGreater(len(b.requests), 20)
            self.assert_only_reads({"save": {"/v3/kv/txn"}, "conflicting save": {"/v3/kv/txn"},
                                    "hex save": {"/v3/kv/txn"}, "base64 save": {"/v3/kv/txn"},
                                    "conflicting binary save": {"/v3/kv/txn"},
                                    "delete": {"/v3/kv/deleterange"}})

            # --- signing in, with auth enabled on the member by etcdctl. The
            # token goes in the Authorization header; the password is not
            # kept anywhere.
            ctl("user", "add", "root:s3cret")
            ctl("auth", "enable")
            seen_tokens = []

            def record_token(paused):
                seen_tokens.append(paused["request"]["headers"].get("Authorization"))
                b.command("Fetch.continueRequest", requestId=paused["requestId"])

            b.intercept(["*/v3/kv/range*"], record_token)
            b.navigate(url + "#/keys")
            b.command("Page.reload")
            b.wait_js("document.getElementById('login') && !document.getElementById('login').hidden",
                      "the sign-in form")
            self.assertIn("user name is empty", b.text("#login-reason"))
            b.screenshot("sign-in")
            b.type_into("#login-user", "root")
            b.type_into("#login-password", "wrong")
            b.click("#login-form button")
            b.wait_text("#login-error", "authentication failed")
            self.assertEqual(b.js("document.getElementById('login-password').value"), "")
            b.type_into("#login-password", "s3cret")
            b.click("#login-form button")
            b.wait_js("document.getElementById('login').hidden", "the form gone after signing in")
            b.wait_js("/^[0-9]+$/.test(document.querySelector('li[data-prefix=\"\"] > .node .count')?.textContent)",
                      "the tree loaded with the token")
            # Before signing in the ranges went without a token; after it,
            # each carried the one token the member issued.
            after = seen_tokens[seen_tokens.index(None) + 1:] if None in seen_tokens else []
            signed = [t for t in after if t is not None]
            self.assertTrue(signed)
            self.assertEqual(len(set(signed)), 1, signed)
            c.etcdctl("--user", "root:s3cret", "auth", "disable", check=True)
            self.assertEqual(b.js("[localStorage.length, sessionStorage.length, document.cookie]"),
                             [0, 0, ""])
            self.assertEqual(b.exceptions, [])

    def test_cluster_of_three_and_disabled(self):
        with cluster.Cluster(SERVER, size=3, base_dir=self.base_dir("c3")) as c:
            leader = c.leader()
            follower = (leader + 1) % 3
            c.etcdctl("put", "/from/etcdctl", "on a follower's console", check=True)
            b = self.start_browser()
            url = f"http://127.0.0.1:{c.members[follower].client_port}/ui/"
            b.navigate(url + "#/cluster")
            b.wait_js("document.querySelectorAll('#members tr').length === 3", "three members")
            b.wait_js("[...document.querySelectorAll('#members td.health')]"
                      ".every(td => td.textContent === 'healthy')", "every member healthy", timeout=20)
            b.wait_js("document.querySelectorAll('#members .badge.leader').length === 1", "one leader")
            leader_row = b.js("document.querySelector('#members .badge.leader').closest('tr').dataset.member")
            self.assertEqual(int(leader_row, 16), c.status(leader).header.member_id)
            b.screenshot("cluster-3-members")
            b.navigate(url + "#/key/" + b64("/from/etcdctl").rstrip("="))
            b.wait_text("#key-value", "on a follower's console")
            self.assertEqual(b.exceptions, [])
            self.assert_only_reads({})

        with cluster.Cluster(SERVER, size=1, base_dir=self.base_dir("off"),
                             extra_flags=["--enable-ui=false"]) as c:
            port = c.members[0].client_port
            self.assertEqual(fetch(port, "/ui/")[0], 404)
            self.assertEqual(fetch(port, "/ui")[0], 404)
            self.assertEqual(fetch(port, "/health")[0], 200)


def main():
    global SERVER, CHROMIUM, SCREENSHOTS
    p = cluster.server_arg_parser(__doc__.splitlines()[0])
    p.add_argument("--chromium", default=CHROMIUM)
    p.add_argument("--screenshots", default=None, help="directory for the pages' screenshots")
    args, rest = p.parse_known_args()
    SERVER, CHROMIUM, SCREENSHOTS = args.server, args.chromium, args.screenshots
    if websocket is None:
        sys.exit("python3's websocket module is missing (Debian package python3-websocket);"
                 " run scripts/install-deps.sh")
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
