#!/usr/bin/python3
"""TLS on the client port and between members, end to end, with real clients.

    /usr/bin/python3 tls_test.py --server build/bin/etcdpp [--ctl build/bin/etcdppctl]

Certificates are made here with the openssl command: a CA, a server
certificate for 127.0.0.1 (IP SAN), client certificates, peer certificates,
and a rogue CA that signs certificates nobody should accept.

Client port (https, --client-cert-auth): etcdctl 3.4 with --cacert --cert
--key (put, get, watch), python etcd3 with ca_cert/cert_key/cert_cert, curl
over https to /health and /v3/kv/range, etcdppctl with the same flags; a
client without a certificate and a client whose certificate the rogue CA
signed are refused; etcdppctl check datascale reads /metrics over https.

Peers (https, --peer-client-cert-auth): a 3-member cluster whose members
accept each other's certificates replicates writes; a fourth member added
with a rogue-CA certificate cannot join; one with a certificate of the right
CA but the wrong common name is refused under --peer-cert-allowed-cn; a
peer handshake below TLS 1.2 is refused, and --tls-min-version=TLS1.3 (which
the peer port's gRPC TLS cannot enforce) stops a member with https peers
from starting.

Every wait is bounded; servers are stopped by the PID started.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import certs  # noqa: E402
import cluster  # noqa: E402

SERVER = None
CTL = None
KEEP = False
CERTS = None  # directory with the certificates, made once


run = certs.run


def make_certificates(d):
    """CA, rogue CA and the leaf certificates every test uses."""
    certs.make_ca(d, "ca")
    certs.make_ca(d, "rogue")
    for name, issuer, cn in (("server", "ca", "server"), ("client", "ca", "alice"),
                             ("rogue-client", "rogue", "alice"), ("peer", "ca", "etcd-peer"),
                             ("rogue-peer", "rogue", "etcd-peer"),
                             ("other-peer", "ca", "intruder")):
        certs.make_leaf(d, name, issuer=f"{d}/{issuer}", cn=cn)


def cert(name):
    return os.path.join(CERTS, name)


class TlsMember(cluster.Member):
    """A member whose client and/or peer URLs are https."""

    client_scheme = "http"
    peer_scheme = "http"

    @property
    def client_url(self):
        return f"{self.client_scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"{self.peer_scheme}://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self):
        return self.client_url


class TlsCluster(cluster.Cluster):
    """cluster.Cluster with https URLs; clients use the good client certificate."""

    def __init__(self, client_tls, peer_tls, size, extra_flags=(), member_flags=None,
                 client_args=None):
        super().__init__(SERVER, size=size, extra_flags=extra_flags, keep=KEEP)
        self.client_tls = client_tls
        self.client_args = client_args
        self.member_flags = member_flags or {}
        members = []
        for m in self.members:
            t = TlsMember(m.name, self.base_dir)
            t.client_port, t.peer_port = m.client_port, m.peer_port
            t.client_scheme = "https" if client_tls else "http"
            t.peer_scheme = "https" if peer_tls else "http"
            members.append(t)
        self.members = members

    def add_member_slot(self, name, client_tls=False, peer_tls=True):
        t = TlsMember(name, self.base_dir)
        t.client_scheme = "https" if client_tls else "http"
        t.peer_scheme = "https" if peer_tls else "http"
        self.members.append(t)
        return len(self.members) - 1

    def command(self, i, state="new"):
        return super().command(i, state) + list(self.member_flags.get(i, ()))

    def tls_args(self):
        if self.client_args is not None:
            return list(self.client_args)
        return ["--cacert", cert("ca.crt"), "--cert", cert("client.crt"),
                "--key", cert("client.key")] if self.client_tls else []

    def _probe(self, m):
        r = subprocess.run([cluster.ETCDCTL, "--endpoints", m.endpoint, "--command-timeout=2s",
                            "--dial-timeout=2s"] + self.tls_args() + ["get", "__e2e_probe__"],
                           env=cluster.etcdctl_env(), capture_output=True, timeout=10)
        return r.returncode == 0

    def ctl(self, *args, i=0, timeout=20, tool=None, tls_args=None):
        tool = tool or cluster.ETCDCTL
        tls = self.tls_args() if tls_args is None else tls_args
        return run([tool, "--endpoints", self.members[i].endpoint, "--dial-timeout=2s",
                    "--command-timeout=5s"] + tls + list(args),
                   env=cluster.etcdctl_env(), timeout=timeout)


def client_tls_flags():
    return ["--cert-file", cert("server.crt"), "--key-file", cert("server.key"),
            "--trusted-ca-file", cert("ca.crt"), "--client-cert-auth"]


def peer_tls_flags(name="peer", ca="ca"):
    return ["--peer-cert-file", cert(f"{name}.crt"), "--peer-key-file", cert(f"{name}.key"),
            "--peer-trusted-ca-file", cert(f"{ca}.crt"), "--peer-client-cert-auth"]


class ClientPortTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = TlsCluster(client_tls=True, peer_tls=False, size=1,
                           extra_flags=client_tls_flags())
        cls.c.start()
        cls.port = cls.c.members[0].client_port
        cls.url = cls.c.members[0].client_url

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_etcdctl_put_get_watch(self):
        r = self.c.ctl("put", "ctl-key", "v1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "OK")
        r = self.c.ctl("get", "ctl-key")
        self.assertEqual(r.stdout.split(), ["ctl-key", "v1"], r.stderr)
        # A watch over TLS sees a later put.
        env = cluster.etcdctl_env()
        watch = subprocess.Popen([cluster.ETCDCTL, "--endpoints", self.url] + self.c.tls_args() +
                                 ["watch", "ctl-watched"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            done = threading.Event()

            def reader():
                for line in watch.stdout:
                    lines.append(line.strip())
                    if len(lines) >= 3:
                        done.set()
                        return

            threading.Thread(target=reader, daemon=True).start()
            # Puts until the watch (which may still be connecting) reports one.
            deadline = time.monotonic() + 20
            n = 0
            while not done.is_set() and time.monotonic() < deadline:
                n += 1
                self.assertEqual(self.c.ctl("put", "ctl-watched", f"w{n}").returncode, 0)
                done.wait(0.5)
            self.assertTrue(done.is_set(), f"watch printed {lines!r}")
            self.assertEqual(lines[0], "PUT")
            self.assertEqual(lines[1], "ctl-watched")
            self.assertTrue(lines[2].startswith("w"))
        finally:
            watch.kill()
            watch.wait(timeout=10)

    def test_python_etcd3(self):
        etcd3 = cluster.try_import_etcd3()
        self.assertIsNotNone(etcd3, "python etcd3 unavailable: run with /usr/bin/python3")
        c = etcd3.client(host="127.0.0.1", port=self.port, ca_cert=cert("ca.crt"),
                         cert_key=cert("client.key"), cert_cert=cert("client.crt"), timeout=5)
        try:
            c.put("py-key", "py-value")
            value, meta = c.get("py-key")
            self.assertEqual(value, b"py-value")
            events, cancel = c.watch("py-watched")
            got = []

            def collect():
                for ev in events:
                    got.append(ev.value)
                    return

            t = threading.Thread(target=collect, daemon=True)
            t.start()
            deadline = time.monotonic() + 20
            while t.is_alive() and time.monotonic() < deadline:
                c.put("py-watched", "seen")
                t.join(0.5)
            cancel()
            self.assertEqual(got, [b"seen"])
        finally:
            c.close()

    def curl(self, *args, with_cert=True):
        base = ["curl", "-sS", "--max-time", "10", "--cacert", cert("ca.crt")]
        if with_cert:
            base += ["--cert", cert("client.crt"), "--key", cert("client.key")]
        return run(base + list(args))

    def test_curl_https(self):
        r = self.curl(self.url + "/health")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"health": "true"})
        self.assertEqual(self.c.ctl("put", "curl-key", "curl-value").returncode, 0)
        r = self.curl("-X", "POST", self.url + "/v3/kv/range", "-d", '{"key":"Y3VybC1rZXk="}')
        self.assertEqual(r.returncode, 0, r.stderr)
        reply = json.loads(r.stdout)
        self.assertEqual(reply["count"], "1")
        self.assertEqual(reply["kvs"][0]["value"], "Y3VybC12YWx1ZQ==")  # curl-value
        # Without ALPN the connection is told apart by its first bytes.
        r = self.curl("--no-alpn", self.url + "/health")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"health": "true"})

    def test_client_without_certificate_is_refused(self):
        r = self.c.ctl("get", "ctl-key", tls_args=["--cacert", cert("ca.crt")])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        r = self.curl(self.url + "/health", with_cert=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("health", r.stdout)

    def test_rogue_ca_client_is_refused(self):
        r = self.c.ctl("get", "ctl-key", tls_args=["--cacert", cert("ca.crt"), "--cert",
                                                   cert("rogue-client.crt"), "--key",
                                                   cert("rogue-client.key")])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        r = run(["curl", "-sS", "--max-time", "10", "--cacert", cert("ca.crt"), "--cert",
                 cert("rogue-client.crt"), "--key", cert("rogue-client.key"),
                 self.url + "/health"])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        etcd3 = cluster.try_import_etcd3()
        c = etcd3.client(host="127.0.0.1", port=self.port, ca_cert=cert("ca.crt"),
                         cert_key=cert("rogue-client.key"), cert_cert=cert("rogue-client.crt"),
                         timeout=3)
        try:
            with self.assertRaises(Exception):
                c.get("py-key")
        finally:
            c.close()

    def test_plain_text_client_is_refused(self):
        # An https port does not serve plaintext.
        r = run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{self.port}/health"])
        self.assertNotIn('"health"', r.stdout)

    def test_etcdppctl(self):
        self.assertIsNotNone(CTL, "run with --ctl build/bin/etcdppctl")
        r = self.c.ctl("put", "pp-key", "pp-value", tool=CTL)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.c.ctl("get", "pp-key", tool=CTL)
        self.assertEqual(r.stdout.split(), ["pp-key", "pp-value"], r.stderr)
        r = self.c.ctl("get", "pp-key", tool=CTL, tls_args=[
            "--cacert", cert("ca.crt"), "--cert", cert("rogue-client.crt"),
            "--key", cert("rogue-client.key")])
        self.assertNotEqual(r.returncode, 0, r.stdout)

    def test_etcdppctl_check_datascale_reads_metrics_over_https(self):
        # The https endpoint's /metrics is read over TLS with the same flags
        # (this member wants a client certificate there too).
        self.assertIsNotNone(CTL, "run with --ctl build/bin/etcdppctl")
        r = self.c.ctl("check", "datascale", tool=CTL, timeout=180)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r.stdout)
        self.assertRegex(r.stdout.split("\n")[-2],
                         r"^PASS: Approximate system memory used : -?\d+\.\d\d MB\.$")


class PeerTls(unittest.TestCase):
    def test_cluster_with_peer_tls_and_refused_members(self):
        c = TlsCluster(client_tls=False, peer_tls=True, size=3,
                       extra_flags=["--peer-cert-allowed-cn", "etcd-peer"],
                       member_flags={i: peer_tls_flags() for i in range(3)})
        with c:  # starts the three members
            r = c.ctl("put", "peer-key", "replicated", i=0)
            self.assertEqual(r.returncode, 0, r.stderr)
            for i in (1, 2):
                r = c.ctl("get", "peer-key", "--consistency=l", i=i)
                self.assertEqual(r.stdout.split(), ["peer-key", "replicated"], r.stderr)

            # A fourth member with a certificate the rogue CA signed: added to
            # the membership, it still cannot fetch the cluster or talk Raft.
            for name, flags in (("rogue", peer_tls_flags("rogue-peer", "ca")),
                                ("intruder", peer_tls_flags("other-peer", "ca"))):
                i = c.add_member_slot(name)
                m = c.members[i]
                # The strict reconfiguration check wants every member
                # connected for a while (5 s) first.
                cluster.wait_until(
                    lambda: c.ctl("member", "add", name, f"--peer-urls={m.peer_url}").returncode == 0,
                    30, interval=0.5, what=f"member add {name}")
                c.member_flags[i] = flags
                cmd = c.command(i, state="existing")
                # Its --initial-cluster: the three members and itself.
                ic = cmd.index("--initial-cluster") + 1
                cmd[ic] = ",".join(f"{x.name}={x.peer_url}" for x in c.members[:3]) + \
                    f",{name}={m.peer_url}"
                log = open(m.log_path, "ab")
                proc = subprocess.Popen(cluster.die_with_parent(cmd), stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
                try:
                    # It gives up on fetching the cluster and exits.
                    code = proc.wait(timeout=40)
                    self.assertNotEqual(code, 0)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait(timeout=10)
                    log.close()
                self.assertIn("cannot fetch cluster info", m.log_tail(), m.log_tail())
                # Never started: the cluster lists it without a name.
                r = c.ctl("member", "list", "-w", "json")
                listed = json.loads(r.stdout)["members"]
                started = [x.get("name", "") for x in listed if x.get("name")]
                self.assertEqual(sorted(started), ["m0", "m1", "m2"])
                # Remove it again so the next one is not blocked by quorum.
                ids = [x["ID"] for x in listed if not x.get("name")]
                self.assertEqual(len(ids), 1)
                r = c.ctl("member", "remove", format(ids[0], "x"))
                self.assertEqual(r.returncode, 0, r.stderr)
            # The cluster still serves writes.
            r = c.ctl("put", "peer-key", "after", i=2)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(c.ctl("get", "peer-key", i=0).stdout.split(), ["peer-key", "after"])

            # TLS 1.2 is the floor on the peer port, as etcd 3.4's: a peer
            # offering at most TLS 1.1 or 1.0, even with every legacy cipher
            # allowed (@SECLEVEL=0), gets no session (gRPC closes the
            # connection without an alert); the same offer at TLS 1.2 gets one.
            port = c.members[0].peer_port

            def negotiated(version):
                r = run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version,
                         "-cipher", "ALL:@SECLEVEL=0", "-CAfile", cert("ca.crt"),
                         "-cert", cert("peer.crt"), "-key", cert("peer.key")],
                        input="", timeout=15, errors="replace")
                line = [x for x in r.stdout.splitlines() if "Cipher is" in x]
                return line[0].split("Cipher is")[-1].strip() if line else None
            self.assertNotIn(negotiated("-tls1_2"), (None, "(NONE)"))
            for old in ("-tls1_1", "-tls1"):
                self.assertIn(negotiated(old), (None, "(NONE)"), old)

    def test_tls13_minimum_is_refused_for_https_peers(self):
        # gRPC's TLS on the peer port cannot be held above TLS 1.2: rather
        # than accept TLS 1.2 from peers quietly, the member does not start.
        c = TlsCluster(client_tls=False, peer_tls=True, size=3)
        try:
            m = c.members[0]
            cmd = c.command(0) + peer_tls_flags() + ["--tls-min-version", "TLS1.3"]
            r = run(cmd, timeout=30)
            self.assertNotEqual(r.returncode, 0, r.stderr)
            self.assertIn("--tls-min-version=TLS1.3 cannot be enforced on https peer URLs",
                          r.stderr)
            self.assertFalse(os.path.exists(os.path.join(m.data_dir, "member")), m.data_dir)
        finally:
            shutil.rmtree(c.base_dir, ignore_errors=True)


def peer_handshake(port, cipher=None, tls12=False):
    """openssl s_client to a peer port with the good peer certificate:
    (handshake succeeded, negotiated cipher, serial of the served certificate)."""
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", cert("ca.crt"),
           "-cert", cert("peer.crt"), "-key", cert("peer.key"), "-verify_return_error",
           "-alpn", "h2"]
    if tls12:
        cmd.append("-tls1_2")
    if cipher:
        cmd += ["-cipher", cipher]
    r = run(cmd, input="", timeout=15, errors="replace")
    cipher_line = [l for l in r.stdout.splitlines() if "Cipher is" in l]
    negotiated = cipher_line[0].split("Cipher is")[-1].strip() if cipher_line else None
    # The handshake is what counts; gRPC may close the connection right
    # after it (no HTTP/2 follows), which s_client reports as an error.
    ok = negotiated not in (None, "(NONE)") and "Verify return code: 0 (ok)" in r.stdout
    serial = None
    if ok:
        x = run(["openssl", "x509", "-noout", "-serial"], input=r.stdout)
        serial = x.stdout.strip() if x.returncode == 0 else None
    return ok, negotiated, serial


class PeerPortSettings(unittest.TestCase):
    def test_cipher_suites_and_certificate_reload_on_the_peer_port(self):
        # The members' peer files are copies, so the test can rotate them.
        d = tempfile.mkdtemp(prefix="etcdpp-e2e-peer-rotate-", dir=CERTS)
        for f in ("peer.crt", "peer.key"):
            shutil.copy(cert(f), os.path.join(d, f))
        flags = ["--peer-cert-file", os.path.join(d, "peer.crt"),
                 "--peer-key-file", os.path.join(d, "peer.key"),
                 "--peer-trusted-ca-file", cert("ca.crt"), "--peer-client-cert-auth",
                 "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
        c = TlsCluster(client_tls=False, peer_tls=True, size=3,
                       member_flags={i: flags for i in range(3)})
        with c:
            port = c.members[0].peer_port
            # TLS 1.2: only the configured suite is negotiated.
            ok, negotiated, first_serial = peer_handshake(
                port, cipher="ECDHE-ECDSA-AES128-GCM-SHA256", tls12=True)
            self.assertTrue(ok, negotiated)
            self.assertEqual(negotiated, "ECDHE-ECDSA-AES128-GCM-SHA256")
            for other in ("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
                ok, negotiated, _ = peer_handshake(port, cipher=other, tls12=True)
                self.assertFalse(ok, f"{other} accepted on the peer port: {negotiated}")

            # A new certificate for the same name, written over the files:
            # new handshakes get it without a restart, and the members keep
            # replicating over it.
            certs.make_leaf(d, "new", issuer=cert("ca"), cn="etcd-peer")
            new_serial = run(["openssl", "x509", "-noout", "-serial", "-in", f"{d}/new.crt"])
            self.assertNotEqual(new_serial.stdout.strip(), first_serial)
            # Key first, then certificate, each by rename (as a rotation tool does).
            for f in ("key", "crt"):
                os.rename(f"{d}/new.{f}", f"{d}/peer.{f}")
            for i in range(3):
                cluster.wait_until(
                    lambda: peer_handshake(c.members[i].peer_port)[2] == new_serial.stdout.strip(),
                    15, interval=0.2, what=f"m{i} to serve the new peer certificate")
            r = c.ctl("put", "rotated", "yes", i=1)
            self.assertEqual(r.returncode, 0, r.stderr)
            for i in (0, 2):
                r = c.ctl("get", "rotated", "--consistency=l", i=i)
                self.assertEqual(r.stdout.split(), ["rotated", "yes"], r.stderr)


class AutoTls(unittest.TestCase):
    def test_self_signed_client_and_peer_certificates(self):
        # --auto-tls and --peer-auto-tls: encrypted everywhere, verified
        # nowhere; clients must skip verification, which etcdctl does only
        # with --insecure-transport=false as well (etcd's auto-TLS recipe).
        c = TlsCluster(client_tls=True, peer_tls=True, size=3,
                       extra_flags=["--auto-tls", "--peer-auto-tls"],
                       client_args=["--insecure-transport=false", "--insecure-skip-tls-verify"])
        with c:
            self.assertTrue(os.path.exists(os.path.join(c.members[0].data_dir, "fixtures",
                                                        "client", "cert.pem")))
            r = c.ctl("put", "auto-key", "auto-value", i=1)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = c.ctl("get", "auto-key", "--consistency=l", i=2)
            self.assertEqual(r.stdout.split(), ["auto-key", "auto-value"], r.stderr)
            # etcdppctl with the same flags, each run a fresh connection (it
            # used to time out now and then: docs/tls.md, "Clients").
            for n in range(10):
                r = c.ctl("get", "auto-key", "--print-value-only", i=n % 3, tool=CTL)
                self.assertEqual((r.returncode, r.stdout.strip()), (0, "auto-value"),
                                 f"run {n}: {r.stderr}")
            # Verifying the self-signed certificate fails, with etcdctl and
            # etcdppctl alike: against a CA that did not sign it, or with
            # --insecure-skip-tls-verify alone (a bare https:// endpoint is
            # always verified).
            for tool in (cluster.ETCDCTL, CTL):
                for args in (["--cacert", cert("ca.crt")], ["--insecure-skip-tls-verify"]):
                    r = c.ctl("get", "auto-key", i=0, tool=tool, tls_args=args)
                    self.assertNotEqual(r.returncode, 0, f"{tool} {args}: {r.stdout}")


def main():
    global SERVER, CTL, KEEP, CERTS
    p = cluster.server_arg_parser(__doc__)
    p.add_argument("--ctl", help="etcdppctl, run with the same TLS flags as etcdctl")
    args, rest = p.parse_known_args()
    SERVER, CTL, KEEP = args.server, args.ctl, args.keep
    with certs.temporary_dir("etcdpp-e2e-certs-", KEEP) as CERTS:
        make_certificates(CERTS)
        sys.exit(certs.unittest_main(rest))

if __name__ == "__main__":
    main()
