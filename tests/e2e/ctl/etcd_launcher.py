"""Starts and stops single-member etcd-compatible servers for ctl e2e tests.

The server binary is either the real etcd or etcdpp: both accept etcd's
flags (--name --data-dir --listen-client-urls --advertise-client-urls
--listen-peer-urls --initial-advertise-peer-urls --initial-cluster). Each
server gets free loopback ports and its own temporary data directory, and is
always stopped by its own PID.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside
    the ephemeral range (the e2e cluster library's picker)."""
    return cluster.free_port()


class Server:
    """One single-member cluster listening on 127.0.0.1 only."""

    def __init__(self, binary, name="default", ready_timeout=30.0):
        self.binary = binary
        self.name = name
        self.ready_timeout = ready_timeout
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="ctl-e2e-")
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "server.log")

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client_port

    @property
    def client_url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    def start(self):
        args = [
            self.binary,
            "--name", self.name,
            "--data-dir", os.path.join(self.data_dir, "data"),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", "%s=%s" % (self.name, self.peer_url),
        ]
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self._wait_listening()
        return self

    def _wait_listening(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited early (code %s); log:\n%s" %
                                   (self.proc.returncode, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not listen within %.0fs; log:\n%s" %
                           (self.ready_timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
