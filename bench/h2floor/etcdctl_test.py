#!/usr/bin/python3
"""The real etcdctl 3.4 gets answers from h2floor_server (docs/grpc_floor.md).

Keeps the experiment from rotting: the nghttp2 server must speak enough of
gRPC's wire protocol for etcd's Go client. Checks that `etcdctl get`
returns the server's RangeResponse (its header, no keys) and that a method
the server does not serve fails with gRPC's Unimplemented, not a
transport error.

    etcdctl_test.py --server build/bin/h2floor_server   (etcdctl from $ETCDCTL)
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "e2e", "lib"))
import cluster  # noqa: E402

# h2_server.cc's fixed header.
CLUSTER_ID = 0x1c3a8d2e5f6b7a90
MEMBER_ID = 0x6a1f2e3d4c5b6a79


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", default="")
    args = p.parse_args()
    if not args.server or not os.access(args.server, os.X_OK):
        sys.exit("h2floor_server was not built: install libnghttp2-dev "
                 "(scripts/install-deps.sh) and re-run cmake")
    if not os.access(cluster.ETCDCTL, os.X_OK):
        sys.exit(f"{cluster.ETCDCTL} missing: install etcd-client")

    server = subprocess.Popen([args.server, "--port", "0", "--threads", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()  # the first line, or "" if it exited
        if not line.startswith("listening on "):
            sys.exit(f"h2floor_server did not start: {line!r}")
        endpoint = line.split()[-1]

        def etcdctl(*argv):
            return subprocess.run([cluster.ETCDCTL, "--endpoints", endpoint,
                                   "--command-timeout", "5s", *argv],
                                  env=cluster.etcdctl_env(), capture_output=True, text=True,
                                  timeout=20)

        got = etcdctl("get", "foo", "-w", "json")
        assert got.returncode == 0, f"etcdctl get failed: {got.stderr}"
        reply = json.loads(got.stdout)
        assert reply["header"]["cluster_id"] == CLUSTER_ID, reply
        assert reply["header"]["member_id"] == MEMBER_ID, reply
        assert reply["header"]["revision"] == 1 and reply["header"]["raft_term"] == 2, reply
        assert "kvs" not in reply and "count" not in reply, reply

        # A prefix read is a Range too, with a range_end: same answer.
        prefix = etcdctl("get", "--prefix", "a")
        assert prefix.returncode == 0 and prefix.stdout == "", prefix

        put = etcdctl("put", "foo", "bar")
        assert put.returncode != 0, "put must fail: h2floor_server serves only Range"
        assert "code = Unimplemented" in put.stderr, put.stderr
        print("ok: etcdctl get and a refused put against", endpoint)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
