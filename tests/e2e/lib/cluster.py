"""Launches etcd-compatible servers (etcdpp or the real etcd) for end-to-end tests.

Python 3 standard library only; the python `etcd3` client is used for the
readiness probe when it is importable (Debian's python3-etcd3 imports only
under /usr/bin/python3), otherwise `etcdctl endpoint health` is polled.

Guarantees every test relies on:
  * members listen on 127.0.0.1 only, on free ports outside the kernel's
    ephemeral range (see free_port);
  * every wait is bounded by a timeout (no test can hang on a dead server);
  * processes are stopped by the PID we started (SIGTERM, then SIGKILL), and
    all of them are killed and their temporary directories removed at exit,
    even when a test fails or is interrupted.

Typical use:

    with Cluster(server="/usr/bin/etcd", size=1) as c:
        client = c.client()          # python etcd3 client of member 0
        c.kill(0)                    # kill -9
        c.restart(0)                 # same data dir, same ports
"""

import argparse
import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# grpcio's fork handlers (pthread_atfork hooks) can deadlock a fork() made
# while client calls run on other threads, which is what restarting a member
# under load does: seen as a test stuck in __run_prefork_handlers. The servers
# are other programs and share no gRPC state with this process, so the hooks
# are not needed. Must be set before grpc is imported (etcd3 imports it).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

ETCDCTL = os.environ.get("ETCDCTL", "/usr/bin/etcdctl")

# Ports handed out by this process; never hand the same one twice, even if the
# kernel would (it may, once the probe socket is closed).
_reserved_ports = set()
# Every Cluster still alive; atexit tears them down.
_live_clusters = []
_port_random = random.SystemRandom()


def _listen_port_candidates():
    """Ports no outgoing connection can take: those outside the kernel's
    ephemeral range. A member killed and restarted on its old port must find
    it free, but while it is down any connect() on the machine (another
    member's peer stream, a client of a test running in parallel) may be
    given that port as its local end if it lies in the ephemeral range, and
    the restart then fails with "address already in use" (seen in CI)."""
    low, high = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
    except (OSError, ValueError):
        pass
    below = range(10000, max(10000, low))
    above = range(max(10000, high + 1), 65536)
    return below if len(below) >= len(above) else above


def _probe_bind(port):
    """Binds 127.0.0.1:port (0: the kernel picks) and returns the port bound,
    or None if that port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, outside the
    ephemeral range, and not handed out by this process before. Picked at
    random so that tests running in parallel rarely try the same one."""
    candidates = _listen_port_candidates()
    for _ in range(1000):
        port = _probe_bind(_port_random.choice(candidates) if candidates else 0)
        if port is not None and port not in _reserved_ports:
            _reserved_ports.add(port)
            return port
    raise RuntimeError("could not find a free port")


class ProcessExited(RuntimeError):
    """A server exited while we waited for it: waiting longer cannot help."""


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value or timeout seconds pass.

    Exceptions from predicate() mean "not yet", except ProcessExited.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except ProcessExited:
            raise
        except Exception as e:  # the probe failing is the normal "not yet" case
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                       + (f" (last error: {last_error!r})" if last_error else ""))


# util-linux's setpriv sets PR_SET_PDEATHSIG and then execs the command, so
# the kernel SIGKILLs the server if the test process dies without cleaning up
# (e.g. ctest's timeout SIGKILL). It replaces a preexec_fn, which ran python
# code in the forked child of this multi-threaded process (the etcd3 client's
# gRPC threads): a child that forked while another thread held an abseil
# mutex could abort ("Mutex::Fer with pending CondVar queueing"). Without a
# preexec_fn the child runs no python code before exec. The signal goes when
# the THREAD that forked the child ends, as with the prctl before.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"]


def cpu_seconds(pid):
    """User plus system CPU time process `pid` has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def die_with_parent(argv):
    """argv prefixed so that its process is killed when this one dies."""
    return DIE_WITH_PARENT + list(argv)


def try_import_etcd3():
    try:
        import etcd3  # noqa: F401
        return etcd3
    except Exception:
        return None


class Member:
    """One server process: its identity, ports, data directory and log file."""

    def __init__(self, name, base_dir):
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = os.path.join(base_dir, name + ".data")
        self.log_path = os.path.join(base_dir, name + ".log")
        self.proc = None
        self._log_file = None

    @property
    def client_url(self):
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(data[-lines:])
        except OSError:
            return "(no log)"

    def vm_hwm_kib(self):
        """Peak resident set size of the running process (VmHWM), in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return None


class Cluster:
    """N members of one server binary on loopback.

    size=1 is the common case. Members are started with the etcd flags both
    etcd 3.4 and etcdpp accept; extra_flags are appended to every member.
    """

    def __init__(self, server, size=1, base_dir=None, extra_flags=(),
                 token=None, start_timeout=30.0, keep=False, log_level="warn"):
        if not os.access(server, os.X_OK):
            raise FileNotFoundError(f"server binary not executable: {server}")
        self.server = server
        self.size = size
        self.extra_flags = list(extra_flags)
        self.start_timeout = start_timeout
        self.keep = keep
        self.log_level = log_level
        self._own_dir = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="etcdpp-e2e-")
        self.token = token or f"e2e-{os.getpid()}-{int(time.time() * 1000)}"
        self.members = [Member(f"m{i}", self.base_dir) for i in range(size)]
        self._clients = {}
        _live_clusters.append(self)

    # ---- lifecycle -------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def initial_cluster(self):
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def command(self, i, state="new"):
        m = self.members[i]
        return [
            self.server,
            "--name", m.name,
            "--data-dir", m.data_dir,
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", self.initial_cluster(),
            "--initial-cluster-state", state,
            "--initial-cluster-token", self.token,
            "--log-level", self.log_level,
        ] + self.extra_flags

    def start(self, attempts=3):
        """Starts every member and waits until each serves a linearizable read.

        A port picked free can be taken before the server binds it (another
        test's connection may get it as its local port); then the members
        start over on new ports and fresh data dirs, up to `attempts` times.
        """
        for attempt in range(attempts):
            for i in range(self.size):
                self.spawn(i)
            try:
                for i in range(self.size):
                    self.wait_ready(i)
                return self
            except (RuntimeError, TimeoutError) as e:
                if attempt + 1 == attempts or "address already in use" not in str(e).lower():
                    raise
                for i in range(self.size):
                    self.stop(i, timeout=5)
                    shutil.rmtree(self.members[i].data_dir, ignore_errors=True)
                    self.members[i].client_port = free_port()
                    self.members[i].peer_port = free_port()
        return self

    def spawn(self, i):
        m = self.members[i]
        if m.running():
            raise RuntimeError(f"{m.name} already running (pid {m.pid})")
        m._log_file = open(m.log_path, "ab")
        m.proc = subprocess.Popen(die_with_parent(self.command(i)), stdout=m._log_file,
                                  stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL,
                                  start_new_session=True)
        return m.proc.pid

    def wait_ready(self, i, timeout=None):
        m = self.members[i]
        timeout = timeout or self.start_timeout

        def probe():
            if not m.running():
                raise ProcessExited(
                    f"{m.name} exited with code {m.proc.returncode}:\n{m.log_tail()}")
            return self._probe(m)
        try:
            wait_until(probe, timeout, interval=0.1, what=f"{m.name} ready")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- {m.name} log ---\n{m.log_tail()}") from None

    def _probe(self, m):
        etcd3 = try_import_etcd3()
        if etcd3 is not None:
            c = etcd3.client(host="127.0.0.1", port=m.client_port, timeout=1)
            try:
                c.get("__e2e_ready_probe__")  # linearizable: needs a leader
                return True
            finally:
                c.close()
        r = subprocess.run([ETCDCTL, "--endpoints", m.endpoint,
                            "--command-timeout=1s", "endpoint", "health"],
                           env=etcdctl_env(), capture_output=True, timeout=5)
        return r.returncode == 0

    def stop(self, i, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout seconds. Returns the exit code."""
        m = self.members[i]
        self._drop_client(i)
        if m.proc is None:
            return None
        if m.proc.poll() is None:
            try:
                m.proc.send_signal(signal.SIGTERM)
                m.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait(timeout=timeout)
        self._close_log(m)
        return m.proc.returncode

    def kill(self, i):
        """kill -9: no chance to flush or sync anything."""
        m = self.members[i]
        self._drop_client(i)
        if m.proc is not None and m.proc.poll() is None:
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait(timeout=10)
        self._close_log(m)

    def restart(self, i, timeout=None):
        """Starts a stopped member again on the same data dir and ports."""
        self.spawn(i)  # an existing data dir ignores --initial-cluster-state
        self.wait_ready(i, timeout)

    def kill_all_and_restart(self, timeout=None):
        """kill -9 of every member, then all start again together (a lone
        member of a cluster cannot become ready without a quorum)."""
        for i in range(len(self.members)):
            self.kill(i)
        for i in range(len(self.members)):
            self.spawn(i)
        for i in range(len(self.members)):
            self.wait_ready(i, timeout)

    def close(self):
        for i in range(len(self.members)):
            try:
                self.stop(i, timeout=5)
            except Exception:
                pass
        if self._own_dir and not self.keep:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        if self in _live_clusters:
            _live_clusters.remove(self)

    @staticmethod
    def _close_log(m):
        if m._log_file:
            m._log_file.close()
            m._log_file = None

    # ---- clients ---------------------------------------------------------

    def endpoints(self):
        return ",".join(m.endpoint for m in self.members)

    def client(self, i=0, timeout=5):
        """A cached python etcd3 client of member i (closed on stop/kill)."""
        if i not in self._clients:
            etcd3 = try_import_etcd3()
            if etcd3 is None:
                raise RuntimeError("python etcd3 unavailable: run with /usr/bin/python3")
            self._clients[i] = etcd3.client(host="127.0.0.1",
                                            port=self.members[i].client_port,
                                            timeout=timeout)
        return self._clients[i]

    def status(self, i, timeout=2):
        """Maintenance.Status of member i (raw StatusResponse: header.member_id, leader)."""
        from etcd3 import etcdrpc
        return self.client(i).maintenancestub.Status(etcdrpc.StatusRequest(), timeout)

    def leader(self, timeout=20.0):
        """Index of the leader once every running member reports the same one."""
        def agreed_leader():
            ids = {}
            leaders = set()
            for i, m in enumerate(self.members):
                if m.running():
                    s = self.status(i)
                    ids[s.header.member_id] = i
                    leaders.add(s.leader)
            if len(leaders) == 1:
                leader_id = leaders.pop()
                if leader_id in ids:
                    return ids[leader_id] + 1  # +1: index 0 must count as found
            return None
        return wait_until(agreed_leader, timeout, interval=0.1, what="an agreed leader") - 1

    def endpoint_status(self, i=0):
        """`etcdctl endpoint status -w json` of member i: its "Status" object
        (header.revision, header.member_id, dbSize, dbSizeInUse, errors)."""
        r = self.etcdctl("endpoint", "status", "-w", "json", i=i, check=True)
        return json.loads(r.stdout)[0]["Status"]

    def alarm_list(self, i=0):
        """`etcdctl alarm list` on member i, one "memberID:<id> alarm:<TYPE>" a line."""
        return self.etcdctl("alarm", "list", i=i, check=True).stdout.strip()

    def print_log_tails(self, lines=40):
        """Every member's last log lines on stderr (for a failing test's report)."""
        for m in self.members:
            print(f"--- {m.name} log tail ---\n{m.log_tail(lines)}", file=sys.stderr)

    def _drop_client(self, i):
        c = self._clients.pop(i, None)
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def etcdctl(self, *args, i=0, stdin=None, timeout=15, check=False):
        """Runs etcdctl (API v3) against member i. Returns CompletedProcess (text)."""
        cmd = [ETCDCTL, "--endpoints", self.members[i].endpoint] + list(args)
        r = subprocess.run(cmd, env=etcdctl_env(), input=stdin,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")
        return r


class Checks:
    """The checks of a script that goes on after a failed one, so that one
    run reports every failure: `check(ok, what)` prints and records `what`
    when `ok` is false; `exit_code` says how the run ends."""

    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        if not ok:
            self.failures.append(what)
            print("FAIL: " + what)
        return ok

    def exit_code(self, c, ok_message):
        """1 after printing c's member logs if a check failed, else 0 after
        printing ok_message. Call it while the cluster's logs exist."""
        if self.failures:
            c.print_log_tails()
            return 1
        print("ok: " + ok_message)
        return 0


def etcdctl_env():
    env = dict(os.environ)
    env["ETCDCTL_API"] = "3"
    return env


def _cleanup_all():
    for c in list(_live_clusters):
        c.close()


atexit.register(_cleanup_all)


def _on_signal(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def server_arg_parser(description):
    """The command line every e2e script shares: --server (required)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--server", required=True,
                   help="server binary under test (etcdpp or /usr/bin/etcd)")
    p.add_argument("--keep", action="store_true",
                   help="keep data dirs and logs for inspection")
    return p
