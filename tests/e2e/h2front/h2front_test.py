#!/usr/bin/python3
"""etcdctl 3.4 and python etcd3 against etcdpp's HTTP/2 front (--h2-front).

The front is on by default: every client connection goes to it. KV, Watch
and LeaseKeepAlive are served by it, everything else (Lease, Cluster,
Maintenance, Auth) is relayed to gRPC on the same connection. Checks, in
order:

  1. parity: one etcdctl session (put, get --prefix, txn, del, errors) on a
     fresh member with the default and on a fresh member with
     --h2-front=false (gRPC C++ alone) gives the
     same exit statuses, outputs and gRPC errors (ids and terms masked);
     so do requests only curl sends (a GET, no te, a JSON content-type):
     the same HTTP status and gRPC status and message;
  2. what the front relays: watch, lease grant / keep-alive --once /
     timetolive, member list, endpoint status (also --cluster, with the
     endpoint given as a URL), auth enable with a user,
     a role and a token (a refused write, a granted one, auth disable);
  3. python etcd3 (grpcio): KV, a watch, a lease refresh, members, status,
     a transaction, an oversized put (its gRPC error), an unknown method
     (UNIMPLEMENTED from gRPC, relayed), a 0x00/UTF-8 key, and puts, a
     range and a watch from a grpcio channel that gzips its requests; the
     connections were the front's (etcdpp_h2front_connections_total);
  4. TLS: with --auto-tls, etcdctl over https is served by the front
     (etcdpp_h2front_connections_total counts it); with --client-cert-auth
     too, and the certificate's name is the user of the calls the front
     answers (KV) and of those it relays (Auth), while a client that claims
     another name in the relay's identity entry is refused.
Prints "N passed, N failed"; exits non-zero on any failure.
"""

import functools
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

FRONT = "--h2-front"
GRPC_ONLY = "--h2-front=false"


def _ignore_watcher_after_close(args, default=threading.excepthook):
    """python-etcd3 0.12's watcher thread re-opens its stream until the
    client is closed, then dies with "Channel closed": not a failure."""
    if (args.thread is not None and args.thread.name.startswith("etcd3_watch_")
            and isinstance(args.exc_value, ValueError)):
        return
    default(args)


threading.excepthook = _ignore_watcher_after_close

PARITY_STEPS = [
    ("put", "foo", "bar"),
    ("put", "foo1", "bar1"),
    ("put", "fop", "x", "--prev-kv"),
    ("put", "foo", "bar2", "--prev-kv", "-w", "json"),
    ("get", "--prefix", "fo"),
    ("get", "--prefix", "fo", "-w", "json"),
    ("get", "foo", "--consistency", "s", "-w", "json"),
    ("get", "foo", "--rev", "1000"),
    ("txn", "-w", "json"),
    ("del", "foo1"),
    ("del", "fo", "--prefix", "--prev-kv"),
    ("put", "", "v"),
    ("compaction", "3"),
    ("get", "foo", "--rev", "2"),
    ("get", "", "--from-key", "-w", "json"),
]
TXN_STDIN = 'value("foo") = "bar2"\n\nput foo txn-ok\nget fop\n\nput foo txn-failed\n\n'

_MASKS = [
    (re.compile(r'"(cluster_id|member_id|raft_term)":\d+'), r'"\1":<masked>'),
]
_GRPC_ERROR = re.compile(r'rpc error: code = (\w+) desc = ([^"]*)')


def mask(text):
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def errors_of(stderr):
    kept = set()
    for line in stderr.splitlines():
        if line.startswith("Error:"):
            kept.add(line)
        m = _GRPC_ERROR.search(line)
        if m:
            kept.add(f"grpc {m.group(1)}: {m.group(2)}")
    return sorted(kept)


# Requests no gRPC client makes, made with curl over HTTP/2 without TLS: gRPC
# C++ refuses a method other than POST and a request without te before the
# call runs, and takes a content-type that is not gRPC's.
CURL = "/usr/bin/curl"
# The refused ones carry no body (their HEADERS end the request), the last
# a framed RangeRequest.
CURL_PROBES = [
    ("GET", ["-X", "GET", "-H", "te: trailers", "-H", "content-type: application/grpc"]),
    ("PUT", ["-X", "PUT", "-H", "te: trailers", "-H", "content-type: application/grpc"]),
    ("POST without te", ["-X", "POST", "-H", "content-type: application/grpc"]),
    ("POST application/json", ["-H", "te: trailers", "-H", "content-type: application/json",
                               "--data-binary", "@-"]),
]
# A framed RangeRequest{key: "foo"}.
RANGE_FOO = b"\0\0\0\0\x05\x0a\x03foo"
_CURL_KEPT = re.compile(r"^< (HTTP/2 \d+|content-type: .*|grpc-status: .*|grpc-message: .*)$")


def curl_probe(url, args):
    # gRPC C++ follows a refusal with RST_STREAM NO_ERROR (the front only
    # while the request is still being sent), and curl 7.88 may then drop
    # the answer and exit 92: such a try is made again (at most 10).
    for _ in range(10):
        r = subprocess.run([CURL, "-s", "-v", "--http2-prior-knowledge", "--max-time", "10",
                            *args, url + "/etcdserverpb.KV/Range"],
                           input=RANGE_FOO, capture_output=True, timeout=20)
        kept = [m.group(1) for m in (_CURL_KEPT.match(line.strip())
                                     for line in r.stderr.decode(errors="replace").splitlines())
                if m]
        if r.returncode != 92:
            break
    return r.returncode, kept


def run_parity_session(server, extra_flags):
    out = []
    with cluster.Cluster(server, size=1, extra_flags=extra_flags) as c:
        for step in PARITY_STEPS:
            stdin = TXN_STDIN if step[0] == "txn" else None
            r = c.etcdctl(*step, stdin=stdin)
            out.append((step, r.returncode, mask(r.stdout), errors_of(r.stderr)))
        for what, args in CURL_PROBES:
            rc, kept = curl_probe(c.members[0].client_url, args)
            out.append((("curl", what), rc, "", kept))
    return out


def check_parity(server, check):
    with_front = run_parity_session(server, [])
    without = run_parity_session(server, [GRPC_ONLY])
    for (step, rc, stdout, errs), (_, rc0, stdout0, errs0) in zip(with_front, without):
        check((rc, stdout, errs) == (rc0, stdout0, errs0),
              f"etcdctl {' '.join(step)}: front gave rc={rc} {stdout!r} {errs}, "
              f"gRPC gave rc={rc0} {stdout0!r} {errs0}")
    # The session did exercise errors, so parity covers error framing.
    errors = [e for _, _, _, errs in with_front for e in errs]
    check(any("key is not provided" in e for e in errors), f"no empty-key error in {errors}")
    check(any("future revision" in e for e in errors), f"no future-revision error in {errors}")
    check(any("has been compacted" in e for e in errors), f"no compacted error in {errors}")
    curls = {step[1]: errs for step, _, _, errs in with_front if step[0] == "curl"}
    check("grpc-message: Bad method header" in curls.get("GET", []),
          f"a GET is not refused as by gRPC: {curls}")
    check("grpc-message: Missing :te header" in curls.get("POST without te", []),
          f"a request without te is not refused as by gRPC: {curls}")
    check("grpc-status: 0" in curls.get("POST application/json", []),
          f"a JSON content-type is not taken as by gRPC: {curls}")


def expect(check, r, what, *substrings, ok=True):
    text = r.stdout + r.stderr
    good = (r.returncode == 0) == ok and all(s in text for s in substrings)
    check(good, f"{what}: rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr[-400:]!r}")
    return good


def check_relayed_with_etcdctl(c, check):
    # A watch: its stream stays open on the connection while puts are served.
    watch = subprocess.Popen([cluster.ETCDCTL, "--endpoints", c.members[0].endpoint,
                              "watch", "w", "--prefix"], env=cluster.etcdctl_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(watch.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        # The watch is registered once a put made after it shows up: keep
        # writing w1 (bounded) until the watcher prints it.
        def seen(value):
            return lambda: any(line.strip() == value for line in lines)
        for n in range(40):
            c.etcdctl("put", "w1", f"v{n}", check=True)
            try:
                cluster.wait_until(seen("w1"), 0.5, what="the watch's first event")
                break
            except TimeoutError:
                continue
        c.etcdctl("put", "w2", "last", check=True)
        cluster.wait_until(seen("last"), 10, what="the watch's event for w2")
    except TimeoutError as e:
        check(False, f"watch through the front: {e}; got {lines!r}")
    finally:
        watch.terminate()
        watch.wait(5)

    grant = c.etcdctl("lease", "grant", "60")
    if expect(check, grant, "lease grant", "granted with TTL(60s)"):
        lease = grant.stdout.split()[1]
        expect(check, c.etcdctl("lease", "keep-alive", "--once", lease), "lease keep-alive --once",
               f"lease {lease} keepalived with TTL(60)")
        expect(check, c.etcdctl("put", "leased", "v", "--lease", lease), "put --lease", "OK")
        expect(check, c.etcdctl("lease", "timetolive", lease, "--keys"), "lease timetolive",
               "attached keys([leased])")
        expect(check, c.etcdctl("lease", "revoke", lease), "lease revoke", "revoked")
        expect(check, c.etcdctl("get", "leased"), "get after revoke")
        check(c.etcdctl("get", "leased").stdout == "", "a revoked lease's key is gone")
    expect(check, c.etcdctl("member", "list"), "member list", "started, m0,",
           c.members[0].client_url)
    expect(check, c.etcdctl("endpoint", "status"), "endpoint status", "3.4.0", "true")
    expect(check, c.etcdctl("endpoint", "health"), "endpoint health", "is healthy")

    # An endpoint given as a URL: grpc-go sends it as written in :authority
    # ("http://127.0.0.1:PORT"), and --cluster dials the members' client URLs.
    url = c.members[0].client_url
    for args, out in [(("put", "url/k", "v"), "OK"), (("get", "url/k"), "url/k\nv"),
                      (("endpoint", "status", "--cluster"), url),
                      (("endpoint", "hashkv", "--cluster"), url)]:
        expect(check, etcdctl_over(url, [], *args), f"etcdctl --endpoints {url} {' '.join(args)}",
               out)

    # Auth: users, roles and the token every later call carries as metadata.
    for args, out in [(("user", "add", "root:rootpw"), "User root created"),
                      (("role", "add", "app"), "Role app created"),
                      (("role", "grant-permission", "app", "readwrite", "app/", "--prefix"),
                       "Role app updated"),
                      (("user", "add", "alice:alicepw"), "User alice created"),
                      (("user", "grant-role", "alice", "app"), "Role app is granted to user alice"),
                      (("auth", "enable"), "Authentication Enabled")]:
        expect(check, c.etcdctl(*args), "etcdctl " + " ".join(args), out)
    expect(check, c.etcdctl("--user", "alice:alicepw", "put", "app/x", "1"), "granted put", "OK")
    expect(check, c.etcdctl("--user", "alice:alicepw", "get", "app/x"), "granted get", "app/x\n1")
    expect(check, c.etcdctl("--user", "alice:alicepw", "put", "other", "1"), "refused put",
           "etcdserver: permission denied", ok=False)
    expect(check, c.etcdctl("put", "app/y", "1"), "put without a user",
           "etcdserver: user name is empty", ok=False)
    expect(check, c.etcdctl("--user", "alice:wrong", "get", "app/x"), "a wrong password",
           "etcdserver: authentication failed, invalid user ID or password", ok=False)
    expect(check, c.etcdctl("--user", "alice:alicepw", "user", "list"), "alice is no admin",
           "etcdserver: permission denied", ok=False)
    expect(check, c.etcdctl("--user", "root:rootpw", "user", "list"), "root lists users",
           "alice", "root")
    expect(check, c.etcdctl("--user", "root:rootpw", "auth", "disable"), "auth disable",
           "Authentication Disabled")


def check_python_etcd3(c, check):
    import grpc
    from etcd3 import etcdrpc
    client = c.client()
    client.put("py/a", "1")
    client.put(b"py/\x00\xc3\xa9", b"\x00binary")
    value, meta = client.get("py/a")
    check(value == b"1" and meta.version == 1, f"get py/a: {value!r}")
    got = sorted(k.key for _, k in client.get_prefix("py/"))
    check(got == [b"py/\x00\xc3\xa9", b"py/a"], f"get_prefix py/: {got!r}")

    events, cancel = client.watch("py/w")
    client.put("py/w", "seen")
    event = next(events)
    cancel()
    check(event.value == b"seen", f"python watch event: {event!r}")

    lease = client.lease(30)
    check(lease.refresh()[0].TTL == 30, "lease refresh through the front")
    lease.revoke()
    check([m.name for m in client.members] == ["m0"], "members through the front")
    check(client.status().version == "3.4.0", "status through the front")
    ok, _ = client.transaction(compare=[client.transactions.value("py/a") == "1"],
                               success=[client.transactions.put("py/a", "2")], failure=[])
    check(ok and client.get("py/a")[0] == b"2", "transaction through the front")

    # Over --max-request-bytes but under gRPC's receive limit: etcd's error.
    try:
        client.put("py/big", "x" * (1700 * 1024))
        check(False, "an oversized put succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT
              and e.details() == "etcdserver: request is too large",
              f"oversized put: {e.code()} {e.details()!r}")
    # Over gRPC's receive limit (1.5 MiB + 512 KiB): the transport's error.
    try:
        client.put("py/huge", "x" * (3 * 1024 * 1024))
        check(False, "a put beyond the receive limit succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
              f"put beyond the receive limit: {e.code()} {e.details()!r}")

    # An error whose message needs percent-encoding (non-ASCII in it is
    # not etcd's; a lease not found is plain ASCII but goes through the relay).
    try:
        client.leasestub.LeaseRevoke(etcdrpc.LeaseRevokeRequest(ID=0x7654321), 5)
        check(False, "revoking a missing lease succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.NOT_FOUND
              and e.details() == "etcdserver: requested lease not found",
              f"relayed error: {e.code()} {e.details()!r}")
    # A client that compresses its requests (grpcio's channel option, as
    # grpc-go's UseCompressor): served as gRPC serves it.
    gzipped = grpc.insecure_channel(c.members[0].endpoint, compression=grpc.Compression.Gzip)
    try:
        kv = etcdrpc.KVStub(gzipped)
        put = kv.Put(etcdrpc.PutRequest(key=b"py/gz", value=b"z" * 50000), timeout=10)
        got = kv.Range(etcdrpc.RangeRequest(key=b"py/gz"), timeout=10)
        check(len(got.kvs) == 1 and got.kvs[0].value == b"z" * 50000
              and got.header.revision == put.header.revision,
              f"a gzip-compressed put and range: {len(got.kvs)} kvs")
        watch = etcdrpc.WatchStub(gzipped).Watch(
            iter([etcdrpc.WatchRequest(create_request=etcdrpc.WatchCreateRequest(
                key=b"py/gz", start_revision=put.header.revision))]), timeout=10)
        created, history = next(watch), next(watch)
        check(created.created and [e.kv.value for e in history.events] == [b"z" * 50000],
              f"a gzip-compressed watch: {history.events!r:.200}")
        watch.cancel()
    except grpc.RpcError as e:
        check(False, f"gzip-compressed requests: {e.code()} {e.details()!r}")
    finally:
        gzipped.close()

    channel = grpc.insecure_channel(c.members[0].endpoint)
    try:
        call = channel.unary_unary("/etcdserverpb.KV/NoSuchMethod")
        call(b"", timeout=5)
        check(False, "an unknown method succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, f"unknown method: {e.code()}")
    finally:
        channel.close()


def check_metrics(c, check):
    """KV calls the front answers count in the same grpc_server_* series as
    the calls it relays (which gRPC's interceptor counts)."""
    import urllib.request
    with urllib.request.urlopen(c.members[0].client_url + "/metrics", timeout=10) as r:
        text = r.read().decode()

    def value(name, **labels):
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + "{" + wanted + "}"):
                return float(line.split()[-1])
        return 0.0

    kv = {"grpc_service": "etcdserverpb.KV", "grpc_type": "unary"}
    check(value("grpc_server_handled_total", grpc_code="OK", grpc_method="Put", **kv) >= 3,
          "native Puts counted in grpc_server_handled_total")
    check(value("grpc_server_handled_total", grpc_code="PermissionDenied", grpc_method="Put",
                **kv) >= 1, "a refused native Put counted with its code")
    check(value("grpc_server_started_total", grpc_method="Range", **kv) >= 1,
          "native Ranges counted in grpc_server_started_total")
    check(value("grpc_server_handled_total", grpc_code="OK", grpc_method="MemberList",
                grpc_service="etcdserverpb.Cluster", grpc_type="unary") >= 1,
          "relayed MemberList counted")
    # On by default: the connections above were the front's.
    check(value("etcdpp_h2front_connections_total", transport="plaintext") >= 10,
          "the default member's front took the connections: "
          f"{value('etcdpp_h2front_connections_total', transport='plaintext')}")


def etcdctl_over(url, flags, *args):
    """etcdctl 3.4 on the one endpoint `url`, with `flags` (TLS ones, say)
    before the command."""
    return subprocess.run([cluster.ETCDCTL, "--endpoints", url, *flags, *args],
                          env=cluster.etcdctl_env(), capture_output=True, text=True, timeout=30)


def healthy(ctl, check, what):
    """Waits until `ctl` finds its endpoint healthy; a failed check if it
    never does."""
    try:
        cluster.wait_until(lambda: ctl("endpoint", "health").returncode == 0, 20, what=what)
        return True
    except TimeoutError as e:
        check(False, f"{what}: {e}")
        return False


def start_tls_member(server, tls_flags, d):
    """A one-member cluster with the front, serving gRPC on an https:// client
    URL and /metrics on a plaintext one; returns (process, https URL,
    metrics URL). Stopped by the caller."""
    port, plain, peer = cluster.free_port(), cluster.free_port(), cluster.free_port()
    url = f"https://127.0.0.1:{port}"
    proc = subprocess.Popen([server, "--data-dir", f"{d}/data",
                             "--listen-client-urls", f"{url},http://127.0.0.1:{plain}",
                             "--advertise-client-urls", url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer}",
                             FRONT, *tls_flags], stdout=subprocess.DEVNULL,
                            stderr=open(f"{d}/log", "w"))
    return proc, url, f"http://127.0.0.1:{plain}"


def front_tls_connections(metrics_url):
    r = subprocess.run([CURL, "-s", f"{metrics_url}/metrics"], capture_output=True, text=True,
                       timeout=10)
    m = re.search(r'^etcdpp_h2front_connections_total\{transport="tls"\} (\S+)$', r.stdout,
                  re.M)
    return float(m.group(1)) if m else None


def check_tls(server, check):
    """TLS connections reach the front through the listener's TLS relay,
    those whose client showed a certificate too, under its name."""
    import certs
    with certs.temporary_dir("etcdpp-h2front-tls-") as d:
        # --auto-tls: the client shows no certificate, the front serves it.
        proc, url, metrics_url = start_tls_member(server, ["--auto-tls"], d)
        try:
            ctl = functools.partial(etcdctl_over, url,
                                    ["--insecure-transport=false", "--insecure-skip-tls-verify"])
            if not healthy(ctl, check, "the https member with the front"):
                return
            expect(check, ctl("put", "tls/k", "v"), "put over TLS through the front", "OK")
            expect(check, ctl("get", "tls/k"), "get over TLS through the front", "tls/k\nv")
            grant = ctl("lease", "grant", "60")
            if expect(check, grant, "lease grant over TLS", "granted with TTL(60s)"):
                expect(check, ctl("lease", "keep-alive", "--once", grant.stdout.split()[1]),
                       "lease keep-alive --once over TLS", "keepalived with TTL(60)")
            expect(check, ctl("endpoint", "status", "--cluster"), "endpoint status --cluster "
                   "over TLS", url)
            served = front_tls_connections(metrics_url)
            check(served is not None and served >= 5,
                  f"the front served the TLS connections: etcdpp_h2front_connections_total"
                  f"{{transport=\"tls\"}} = {served}")
        finally:
            proc.terminate()
            proc.wait(10)
    with certs.temporary_dir("etcdpp-h2front-cert-") as d:
        # --client-cert-auth: the front serves these connections too, under
        # the certificate's name, in the calls it answers and in those it
        # relays.
        certs.make_ca(d, "ca")
        certs.make_leaf(d, "server", issuer=f"{d}/ca", cn="server")
        for user in ("root", "alice"):
            certs.make_leaf(d, user, issuer=f"{d}/ca", cn=user)
        proc, url, metrics_url = start_tls_member(
            server, ["--cert-file", f"{d}/server.crt", "--key-file", f"{d}/server.key",
                     "--trusted-ca-file", f"{d}/ca.crt", "--client-cert-auth"], d)
        try:
            def as_user(name):
                return functools.partial(etcdctl_over, url,
                                         ["--cacert", f"{d}/ca.crt", "--cert", f"{d}/{name}.crt",
                                          "--key", f"{d}/{name}.key"])
            root, alice = as_user("root"), as_user("alice")
            if not healthy(root, check, "the client-cert-auth member with the front"):
                return
            expect(check, root("put", "cert/k", "v"), "put with a client certificate", "OK")
            for args, out in [(("user", "add", "root:rootpw"), "User root created"),
                              (("user", "add", "alice:alicepw"), "User alice created"),
                              (("auth", "enable"), "Authentication Enabled")]:
                expect(check, root(*args), "etcdctl " + " ".join(args) + " as root's certificate",
                       out)
            # KV is the front's own, Auth is relayed: both see the name.
            expect(check, root("get", "cert/k"), "get as root's certificate", "cert/k\nv")
            expect(check, root("user", "list"), "user list as root's certificate (relayed)",
                   "alice", "root")
            expect(check, alice("put", "cert/k", "w"), "put as alice's certificate",
                   "etcdserver: permission denied", ok=False)
            expect(check, alice("user", "list"), "user list as alice's certificate (relayed)",
                   "etcdserver: permission denied", ok=False)
            check_claimed_identity(url, d, check)
            expect(check, root("auth", "disable"), "auth disable as root's certificate",
                   "Authentication Disabled")
            served = front_tls_connections(metrics_url)
            check(served is not None and served >= 8,
                  f"connections with a client certificate are the front's: "
                  f"etcdpp_h2front_connections_total{{transport=\"tls\"}} = {served}")
        finally:
            proc.terminate()
            proc.wait(10)


def check_claimed_identity(url, d, check):
    """A client with alice's certificate that claims root in the entry the
    front uses to state a relayed call's name (api/client_identity.h) is
    still alice, for a relayed call and for one the front answers."""
    import grpc
    from etcd3 import etcdrpc
    with open(f"{d}/ca.crt", "rb") as ca, open(f"{d}/alice.key", "rb") as key, \
            open(f"{d}/alice.crt", "rb") as crt:
        credentials = grpc.ssl_channel_credentials(ca.read(), key.read(), crt.read())
    channel = grpc.secure_channel(url.removeprefix("https://"), credentials)
    claim = [("etcdpp-relayed-cn-bin", b"root")]
    try:
        for what, call in [
                ("UserList", lambda: etcdrpc.AuthStub(channel).UserList(
                    etcdrpc.AuthUserListRequest(), timeout=10, metadata=claim)),
                ("Put", lambda: etcdrpc.KVStub(channel).Put(
                    etcdrpc.PutRequest(key=b"cert/k", value=b"claimed"), timeout=10,
                    metadata=claim))]:
            try:
                call()
                check(False, f"{what} claiming root with alice's certificate succeeded")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.PERMISSION_DENIED,
                      f"{what} claiming root with alice's certificate: {e.code()} {e.details()!r}")
    finally:
        channel.close()


class CountedChecks(cluster.Checks):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __call__(self, ok, what):
        self.count += 1
        return super().__call__(ok, what)


def main():
    args = cluster.server_arg_parser(__doc__.splitlines()[0]).parse_args()
    server = os.path.abspath(args.server)
    check = CountedChecks()
    if not os.path.exists(CURL):
        print(f"{CURL} is missing: apt-get install curl")
        return 1
    check_parity(server, check)
    with cluster.Cluster(server, size=1, keep=args.keep) as c:
        check_relayed_with_etcdctl(c, check)
        check_python_etcd3(c, check)
        check_metrics(c, check)
        code = check.exit_code(c, "etcdctl and python etcd3 through the HTTP/2 front")
    check_tls(server, check)
    print(f"{check.count - len(check.failures)} passed, {len(check.failures)} failed")
    return 1 if check.failures or code else 0


if __name__ == "__main__":
    sys.exit(main())
