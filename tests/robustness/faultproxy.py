"""A TCP proxy in front of every member's peer port that can fail single links.

Each member advertises the proxy's port as its peer URL and listens on its
own port behind it, so all Raft traffic to member B enters B's proxy. The
proxy learns which member opened a connection from the kernel: the
connection's client-side port is looked up in /proc/net/tcp to get the
socket's inode, and the inode among the fds of the member processes
(/proc/<pid>/fd). So a rule names a directed link (src -> dst) and applies to
the bytes flowing from src to dst on every connection between the two,
whichever side opened it (etcd's stream connections carry messages back to
the dialer; etcdpp's carry them to the dialee: the byte direction is what is
the same for both).

Modes of a directed link:
  ok         bytes flow
  delay:MS   every chunk is forwarded MS milliseconds after it arrived (order kept)
  blackhole  bytes are read and discarded, the connection stays open (the
             sender sees nothing wrong); when healed, those connections are
             closed (their streams have holes)
  drop       connections between the two are reset and new ones refused

Runs as its own process (no GIL shared with the clients); commands are JSON
lines on stdin, answered by one line on stdout:
  {"cmd": "pids", "pids": {"m0": 123, ...}}
  {"cmd": "set", "src": "m0", "dst": "m1", "mode": "blackhole"}
  {"cmd": "heal"}           every link back to ok
  {"cmd": "stats"}
Started with: faultproxy.py NAME:LISTEN_PORT:TARGET_PORT ...
"""

import asyncio
import json
import os
import sys
import threading
import time


class Proxy:
    def __init__(self, members):
        self.members = members  # name -> (listen_port, target_port)
        self.pids = {}
        self.rules = {}  # (src, dst) -> mode
        self.conns = set()
        self.stats = {"accepted": 0, "refused": 0, "unidentified": 0, "closed_by_fault": 0}

    # ---- who is connecting ---------------------------------------------------

    def _inode_of(self, client_port, server_port):
        # gRPC's C core dials IPv4 through dual-stack IPv6 sockets: those
        # show up in tcp6 as ::ffff:127.0.0.1 (...FFFF00000100007F).
        want_local = f"0100007F:{client_port:04X}"
        want_remote = f"0100007F:{server_port:04X}"
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        p = line.split()
                        if p[1].endswith(want_local) and p[2].endswith(want_remote):
                            return p[9]
            except OSError:
                pass
        return None

    def _owner(self, inode):
        target = f"socket:[{inode}]"
        for name, pid in self.pids.items():
            d = f"/proc/{pid}/fd"
            try:
                for fd in os.listdir(d):
                    try:
                        if os.readlink(f"{d}/{fd}") == target:
                            return name
                    except OSError:
                        continue
            except OSError:
                continue
        return None

    async def identify(self, client_port, server_port):
        for _ in range(20):
            inode = self._inode_of(client_port, server_port)
            if inode and inode != "0":
                name = self._owner(inode)
                if name:
                    return name
            await asyncio.sleep(0.05)
        return None

    # ---- forwarding ----------------------------------------------------------

    def mode(self, src, dst):
        return self.rules.get((src, dst), "ok")

    async def handle(self, reader, writer, dst):
        listen_port, target_port = self.members[dst]
        peer = writer.get_extra_info("peername")
        src = await self.identify(peer[1], listen_port)
        if src is None:
            self.stats["unidentified"] += 1
            writer.close()
            return
        if self.mode(src, dst) == "drop" or self.mode(dst, src) == "drop":
            self.stats["refused"] += 1
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        self.stats["accepted"] += 1
        conn = {"src": src, "dst": dst, "writers": (writer, up_writer), "tainted": False}
        self.conns.add(id(conn))
        self._conn_objs = getattr(self, "_conn_objs", {})
        self._conn_objs[id(conn)] = conn
        try:
            await asyncio.gather(self.pump(reader, up_writer, src, dst, conn),
                                 self.pump(up_reader, writer, dst, src, conn),
                                 return_exceptions=True)
        finally:
            self.conns.discard(id(conn))
            self._conn_objs.pop(id(conn), None)
            for w in conn["writers"]:
                w.close()

    async def pump(self, reader, writer, src, dst, conn):
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                m = self.mode(src, dst)
                if m == "drop":
                    break
                if m == "blackhole":
                    conn["tainted"] = True
                    continue
                delay = int(m.split(":")[1]) / 1000.0 if m.startswith("delay:") else 0.0
                await queue.put((time.monotonic() + delay, data))
        finally:
            await queue.put((0, None))
            try:
                await asyncio.wait_for(sender, 5)
            except Exception:
                sender.cancel()
            for w in conn["writers"]:
                w.close()

    def close_where(self, pred):
        for conn in list(getattr(self, "_conn_objs", {}).values()):
            if pred(conn):
                self.stats["closed_by_fault"] += 1
                for w in conn["writers"]:
                    w.close()

    # ---- control ---------------------------------------------------------------

    def command(self, cmd):
        c = cmd["cmd"]
        if c == "pids":
            self.pids = {k: int(v) for k, v in cmd["pids"].items() if v}
        elif c == "set":
            src, dst, m = cmd["src"], cmd["dst"], cmd["mode"]
            self.rules[(src, dst)] = m
            if m == "drop":
                self.close_where(lambda x: {x["src"], x["dst"]} == {src, dst})
        elif c == "heal":
            self.rules.clear()
            self.close_where(lambda x: x["tainted"])
        elif c == "stats":
            return dict(self.stats, conns=len(self.conns))
        else:
            raise ValueError(c)
        return {}


async def main(specs):
    members = {}
    for s in specs:
        name, listen, target = s.split(":")
        members[name] = (int(listen), int(target))
    proxy = Proxy(members)
    loop = asyncio.get_running_loop()
    servers = []
    for name, (listen, _) in members.items():
        servers.append(await asyncio.start_server(
            lambda r, w, dst=name: proxy.handle(r, w, dst), "127.0.0.1", listen))
    done = asyncio.Event()

    def on_line(line):
        try:
            out = proxy.command(json.loads(line))
            sys.stdout.write(json.dumps({"ok": True, **out}) + "\n")
        except Exception as e:  # a bad command is the harness's bug: say it
            sys.stdout.write(json.dumps({"ok": False, "error": repr(e)}) + "\n")
        sys.stdout.flush()

    def reader():
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(on_line, line)
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=reader, daemon=True).start()
    sys.stdout.write(json.dumps({"ok": True, "listening": list(members)}) + "\n")
    sys.stdout.flush()
    await done.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
