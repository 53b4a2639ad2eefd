"""Python gRPC stubs for v3lockpb.Lock and v3electionpb.Election.

Debian's python3-etcd3 ships stubs for etcdserverpb only, registered under the
file names "rpc.proto" and "kv.proto". We compile the repository's
v3lock.proto and v3election.proto with protoc and grpc_python_plugin into a
temporary directory, with their imports renamed to those file names, so the
generated modules share etcd3's ResponseHeader and KeyValue (one descriptor
pool holds each message once).

    lockpb, lockgrpc, electionpb, electiongrpc = lock_stubs.load()
"""

import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

_REPO_PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "proto")
_RENAMES = {"etcdserverpb/rpc.proto": "rpc.proto", "mvccpb/kv.proto": "kv.proto",
            "authpb/auth.proto": "auth.proto"}
_loaded = None


def _copy_renamed(src, dst):
    with open(src) as f:
        text = f.read()
    for old, new in _RENAMES.items():
        text = text.replace(f'import "{old}"', f'import "{new}"')
    with open(dst, "w") as f:
        f.write(text)


def load():
    """Returns (v3lock_pb2, v3lock_pb2_grpc, v3election_pb2, v3election_pb2_grpc)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    from etcd3.etcdrpc import rpc_pb2  # noqa: F401  (registers rpc.proto and kv.proto first)
    out = tempfile.mkdtemp(prefix="etcdpp-lock-stubs-")
    src = os.path.join(out, "src")
    os.mkdir(src)
    for proto, name in list(_RENAMES.items()) + [("v3lockpb/v3lock.proto", "v3lock.proto"),
                                                 ("v3electionpb/v3election.proto",
                                                  "v3election.proto")]:
        _copy_renamed(os.path.join(_REPO_PROTO, proto), os.path.join(src, name))
    plugin = shutil.which("grpc_python_plugin") or "/usr/bin/grpc_python_plugin"
    subprocess.run(["protoc", "-I", src, f"--python_out={out}", f"--grpc_out={out}",
                    f"--plugin=protoc-gen-grpc={plugin}",
                    os.path.join(src, "v3lock.proto"), os.path.join(src, "v3election.proto")],
                   check=True)
    # The generated modules import rpc_pb2 / kv_pb2 at top level: point them at etcd3's.
    for name in ("v3lock_pb2.py", "v3election_pb2.py", "v3lock_pb2_grpc.py",
                 "v3election_pb2_grpc.py"):
        path = os.path.join(out, name)
        with open(path) as f:
            text = f.read()
        text = re.sub(r"^import (rpc_pb2|kv_pb2) as", r"from etcd3.etcdrpc import \1 as", text,
                      flags=re.M)
        with open(path, "w") as f:
            f.write(text)
    sys.path.insert(0, out)
    try:
        _loaded = tuple(importlib.import_module(m) for m in (
            "v3lock_pb2", "v3lock_pb2_grpc", "v3election_pb2", "v3election_pb2_grpc"))
    finally:
        sys.path.remove(out)
        shutil.rmtree(out, ignore_errors=True)
    return _loaded
