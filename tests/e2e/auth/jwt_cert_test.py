#!/usr/bin/python3
"""JWT auth tokens and client-certificate users, end to end, with real clients.

    /usr/bin/python3 jwt_cert_test.py --server build/bin/etcdpp

JWT (--auth-token jwt,pub-key=...,priv-key=...,sign-method=RS256,ttl=...): a
3-member cluster whose members share only the key files. etcdctl 3.4 with
--user and python etcd3 with user/password log in and read and write within
their grant; a token handed out by one member is accepted by the others; a
token whose claims were altered, one signed by another key and one past its
"exp" (signed with the cluster's own key) are refused with "etcdserver:
invalid auth token"; after a permission change an older token is refused
with "etcdserver: revision of auth store is old", as etcd 3.4 does.

Client certificates (--client-cert-auth): a request without a token is made
as the user the certificate's common name names: etcdctl 3.4 with --cert
--key --cacert of a certificate for "alice" (limited to the app/ prefix)
reads, writes, deletes, watches and runs txns inside the prefix and is
refused outside it; with a token as well, the token's user counts.

Keys and certificates are made here with the openssl command and python's
cryptography package; every wait is bounded; servers are stopped by PID.
"""

import base64
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import certs  # noqa: E402
import cluster  # noqa: E402

SERVER = None
KEEP = False
KEYS = None  # directory with keys and certificates, made once

ROOT = ["--user", "root:rootpw"]
ALICE = ["--user", "alice:alicepw"]


run = certs.run


def path(name):
    return os.path.join(KEYS, name)


def make_keys(d):
    for name in ("jwt", "other"):
        certs.make_rsa_key_pair(d, name)
    certs.make_ca(d, "ca", cn="jwt-cert-test-ca")
    for name in ("server", "root", "alice", "mallory"):
        certs.make_leaf(d, name, issuer=f"{d}/ca", cn=name)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_rs256(key_file, header, claims):
    """A JWT signed by key_file (python's cryptography, PKCS#1 v1.5 SHA-256)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    with open(key_file, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    signed = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
              b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signed + "." + b64url(signature)


def set_up_users(ctl, extra=()):
    """etcd's walkthrough: root, role app (readwrite app/), alice in it; auth on."""
    for args in (["user", "add", "root:rootpw"], ["role", "add", "app"],
                 ["role", "grant-permission", "app", "readwrite", "--prefix", "app/"],
                 ["user", "add", "alice:alicepw"], ["user", "grant-role", "alice", "app"],
                 ["put", "secret", "s0"]) + tuple(extra):
        r = ctl(*args)
        assert r.returncode == 0, f"{args}: {r.stderr}"
    r = ctl("auth", "enable")
    assert r.returncode == 0, r.stderr


class JwtTokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        jwt = (f"jwt,pub-key={path('jwt.pub')},priv-key={path('jwt.key')},"
               f"sign-method=RS256,ttl=10m")
        cls.c = cluster.Cluster(SERVER, size=3, keep=KEEP, extra_flags=["--auth-token", jwt])
        cls.c.start()
        set_up_users(lambda *a: cls.c.etcdctl(*a, i=0))

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def ctl(self, *args, i=0):
        return self.c.etcdctl(*args, i=i)

    def grpc_stub(self, i):
        import grpc
        from etcd3 import etcdrpc
        channel = grpc.insecure_channel(f"127.0.0.1:{self.c.members[i].client_port}")
        self.addCleanup(channel.close)
        return etcdrpc, etcdrpc.KVStub(channel), etcdrpc.AuthStub(channel)

    def token_from(self, i, user="alice", password="alicepw"):
        etcdrpc, _, auth = self.grpc_stub(i)
        return auth.Authenticate(etcdrpc.AuthenticateRequest(name=user, password=password),
                                 timeout=10).token

    def range_with(self, i, token, key=b"app/x"):
        """(ok, detail) of a Range of `key` on member i with `token`."""
        import grpc
        etcdrpc, kv, _ = self.grpc_stub(i)
        try:
            r = kv.Range(etcdrpc.RangeRequest(key=key), metadata=[("token", token)], timeout=10)
            return True, r
        except grpc.RpcError as e:
            return False, e.details()

    def test_etcdctl_logs_in_and_meets_its_grant_on_every_member(self):
        for i in range(3):
            r = self.ctl(*ALICE, "put", f"app/m{i}", "v", i=i)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = self.ctl(*ALICE, "get", f"app/m{i}", "--print-value-only", i=(i + 1) % 3)
            self.assertEqual(r.stdout.strip(), "v", r.stderr)
            r = self.ctl(*ALICE, "get", "secret", i=i)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("etcdserver: permission denied", r.stderr)
        r = self.ctl("--user", "alice:wrong", "get", "app/m0")
        self.assertIn("etcdserver: authentication failed, invalid user ID or password", r.stderr)

    def test_python_etcd3_logs_in_and_uses_its_jwt(self):
        etcd3 = cluster.try_import_etcd3()
        self.assertIsNotNone(etcd3, "python3-etcd3 is missing (apt-get install python3-etcd3)")
        client = etcd3.client(host="127.0.0.1", port=self.c.members[1].client_port,
                              user="alice", password="alicepw", timeout=10)
        # It sends the token as call credentials and as metadata; gRPC drops
        # call credentials on a channel without TLS, so only the metadata
        # (what etcd's own clients send) is kept (auth_walkthrough_test.py).
        client.call_credentials = None
        try:
            token = dict(client.metadata)["token"]
            self.assertEqual(json.loads(unb64url(token.split(".")[0]))["alg"], "RS256")
            client.put("app/py", "from-python")
            value, _ = client.get("app/py")
            self.assertEqual(value, b"from-python")
            with self.assertRaises(Exception) as refused:
                client.get("secret")
            self.assertIn("permission denied", str(refused.exception))
        finally:
            client.close()

    def test_token_is_etcds_jwt_and_works_on_other_members(self):
        token = self.token_from(0)
        header, claims, signature = token.split(".")
        self.assertEqual(json.loads(unb64url(header)), {"alg": "RS256", "typ": "JWT"})
        body = json.loads(unb64url(claims))
        self.assertEqual(sorted(body), ["exp", "revision", "username"])
        self.assertEqual(body["username"], "alice")
        self.assertGreater(body["exp"], time.time() + 500)  # ttl=10m
        self.assertLessEqual(body["exp"], time.time() + 601)
        # Another member, which never saw this token, verifies it by itself.
        for i in (1, 2):
            ok, detail = self.range_with(i, token)
            self.assertTrue(ok, detail)

    def test_altered_foreign_and_expired_tokens_are_refused(self):
        token = self.token_from(2)
        header, claims, signature = token.split(".")
        body = json.loads(unb64url(claims))
        cases = {}
        # The claims changed to another user; the signature kept.
        forged = dict(body, username="root")
        cases["altered claims"] = ".".join(
            [header, b64url(json.dumps(forged, separators=(",", ":")).encode()), signature])
        # Well formed, signed by a key the cluster does not hold.
        cases["another key"] = sign_rs256(path("other.key"), {"alg": "RS256", "typ": "JWT"}, body)
        # Signed by the cluster's own key, but past its exp.
        cases["expired"] = sign_rs256(path("jwt.key"), {"alg": "RS256", "typ": "JWT"},
                                      dict(body, exp=int(time.time()) - 5))
        # alg "none" without a signature.
        cases["alg none"] = (b64url(b'{"alg":"none","typ":"JWT"}') + "." + claims + ".")
        cases["not a jwt"] = "garbage"
        # A control: the cluster's own key with a future exp is accepted.
        good = sign_rs256(path("jwt.key"), {"alg": "RS256", "typ": "JWT"},
                          dict(body, exp=int(time.time()) + 60))
        ok, detail = self.range_with(1, good)
        self.assertTrue(ok, detail)
        for what, bad in cases.items():
            for i in range(3):
                ok, detail = self.range_with(i, bad)
                self.assertFalse(ok, f"{what} accepted by member {i}")
                self.assertEqual(detail, "etcdserver: invalid auth token", what)

    def test_token_older_than_a_permission_change_is_refused(self):
        token = self.token_from(0)
        ok, detail = self.range_with(1, token)
        self.assertTrue(ok, detail)
        r = self.ctl(*ROOT, "role", "grant-permission", "app", "read", "public")
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in range(3):
            # Members apply the grant at their own pace; each refuses the
            # token once it has.
            cluster.wait_until(lambda: not self.range_with(i, token)[0], 10,
                               what=f"member {i} to apply the grant")
            ok, detail = self.range_with(i, token)
            self.assertFalse(ok, f"member {i} took a token older than the grant")
            self.assertEqual(detail, "etcdserver: revision of auth store is old")
        # A new login gets the new revision; etcdctl logs in on each run.
        ok, detail = self.range_with(2, self.token_from(1), key=b"public")
        self.assertTrue(ok, detail)


class CertificateUsers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = cluster.Cluster(SERVER, size=1, keep=KEEP, extra_flags=[
            "--cert-file", path("server.crt"), "--key-file", path("server.key"),
            "--trusted-ca-file", path("ca.crt"), "--client-cert-auth"])
        m = cls.c.members[0]
        https = f"https://127.0.0.1:{m.client_port}"
        cls.c.command = lambda i, state="new", base=cls.c.command: [
            a.replace(f"http://127.0.0.1:{m.client_port}", https) for a in base(i, state)]
        cls.c._probe = lambda member: cls.ctl_as("root", "get", "probe").returncode == 0
        cls.c.start()
        # Set up as root by certificate: no password is ever sent.
        set_up_users(lambda *a: cls.ctl_as("root", *a))

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    @classmethod
    def ctl_as(cls, who, *args, stdin=None):
        m = cls.c.members[0]
        return run([cluster.ETCDCTL, "--endpoints", f"https://127.0.0.1:{m.client_port}",
                    "--dial-timeout=3s", "--command-timeout=5s", "--cacert", path("ca.crt"),
                    "--cert", path(f"{who}.crt"), "--key", path(f"{who}.key")] + list(args),
                   env=cluster.etcdctl_env(), input=stdin)

    def assertAllowed(self, r):
        self.assertEqual(r.returncode, 0, r.stderr)

    def assertDenied(self, r):
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("etcdserver: permission denied", r.stderr)

    def test_certificate_common_name_is_the_user(self):
        self.assertAllowed(self.ctl_as("alice", "put", "app/a", "1"))
        r = self.ctl_as("alice", "get", "app/a", "--print-value-only")
        self.assertEqual(r.stdout.strip(), "1", r.stderr)
        self.assertAllowed(self.ctl_as("alice", "get", "--prefix", "app/"))
        self.assertAllowed(self.ctl_as("alice", "del", "app/a"))
        self.assertAllowed(self.ctl_as("alice", "put", "app/a", "1"))
        txn_in = 'value("app/a") = "1"\n\nput app/b 2\n\nget app/a\n\n'
        self.assertAllowed(self.ctl_as("alice", "txn", stdin=txn_in))

        self.assertDenied(self.ctl_as("alice", "get", "secret"))
        self.assertDenied(self.ctl_as("alice", "put", "secret", "x"))
        self.assertDenied(self.ctl_as("alice", "del", "secret"))
        self.assertDenied(self.ctl_as("alice", "get", "--prefix", "app"))  # wider than app/
        txn_out = 'value("secret") = "s0"\n\nput app/c 3\n\n\n'
        self.assertDenied(self.ctl_as("alice", "txn", stdin=txn_out))
        self.assertDenied(self.ctl_as("alice", "user", "list"))
        r = self.ctl_as("alice", "watch", "secret")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("permission denied", r.stderr)
        # The value outside the grant is untouched.
        r = self.ctl_as("root", "get", "secret", "--print-value-only")
        self.assertEqual(r.stdout.strip(), "s0", r.stderr)

    def test_unknown_common_name_is_denied_and_a_token_wins(self):
        # mallory's certificate is valid, but no such user exists.
        self.assertDenied(self.ctl_as("mallory", "get", "app/a"))
        self.assertDenied(self.ctl_as("mallory", "put", "app/a", "x"))
        # With a token the token's user counts, not the certificate's.
        self.assertAllowed(self.ctl_as("mallory", *ROOT, "get", "secret"))
        self.assertDenied(self.ctl_as("root", *ALICE, "get", "secret"))


def main():
    global SERVER, KEEP, KEYS
    p = cluster.server_arg_parser(__doc__)
    args, rest = p.parse_known_args()
    SERVER, KEEP = args.server, args.keep
    with certs.temporary_dir("etcdpp-e2e-jwt-", KEEP) as KEYS:
        make_keys(KEYS)
        sys.exit(certs.unittest_main(rest))

if __name__ == "__main__":
    main()
