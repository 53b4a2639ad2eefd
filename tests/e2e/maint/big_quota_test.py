#!/usr/bin/python3
"""An 8 GiB --quota-backend-bytes (etcd's suggested maximum) on a member of
a machine that may have less free memory than that:

  * the member starts, and its LMDB map (sized from the quota) costs
    neither memory nor disk up front: it is a shared mapping of the data
    file (page cache, no memory reserved), the file takes little disk and
    the member's resident set stays small;
  * 40 MiB of writes grow the store without a restart: `endpoint status`
    reports dbSize growing past 40 MiB, and dbSizeInUse <= dbSize; the
    file takes about what was written;
  * after a delete, compaction and defrag, dbSize drops and the copy that
    replaced the store takes little disk too.

Bounded: about 10 s.

    /usr/bin/python3 big_quota_test.py --server build/bin/etcdpp
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

QUOTA = 8 * 1024 * 1024 * 1024
MIB = 1024 * 1024


def status(c):
    s = c.endpoint_status()
    return s["dbSize"], s.get("dbSizeInUse", 0), s["header"]["revision"]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def data_mappings(pid, path):
    """(length, perms) of each mapping of `path` in the process."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == path:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                out.append((end - start, fields[1]))
    return out


def data_file(member):
    return os.path.join(member.data_dir, "member", "snap", "db", "data.mdb")


def main():
    opts = cluster.server_arg_parser(__doc__).parse_args()
    check = cluster.Checks()
    with open("/proc/meminfo") as f:
        available = [ln for ln in f if ln.startswith("MemAvailable:")][0].strip()
    with cluster.Cluster(opts.server, extra_flags=["--quota-backend-bytes", str(QUOTA)],
                         keep=opts.keep) as c:
        m = c.members[0]
        st = os.stat(data_file(m))
        print("started with an 8 GiB quota (%s): data.mdb %d MiB long, %d MiB on disk, "
              "member RSS %d MiB" % (available, st.st_size // MIB, st.st_blocks * 512 // MIB,
                                     rss_kib(m.pid) // 1024))
        check(st.st_blocks * 512 < 64 * MIB,
              "the empty store takes %d bytes of disk" % (st.st_blocks * 512))
        # A shared file mapping is page cache: the kernel reserves no memory
        # for it (no commit charge) and can drop its clean pages at will, so
        # the map may exceed the machine's free RAM.
        maps = data_mappings(m.pid, os.path.realpath(data_file(m)))
        check(any(length >= QUOTA and perms[3] == "s" for length, perms in maps),
              "no shared mapping of the quota's size over data.mdb: %r" % maps)
        size0, _, _ = status(c)

        client = c.client(0)
        value = os.urandom(MIB // 2).hex()
        for i in range(40):
            client.put("big/%03d" % i, value)
        # dbSize is the store's size as of its last commit, which follows the
        # answers by up to --backend-batch-interval (100 ms), as etcd's does.
        try:
            cluster.wait_until(lambda: status(c)[0] >= 40 * MIB, timeout=10,
                               what="dbSize to count the 40 MiB of puts")
        except TimeoutError:
            pass  # the check below reports it
        size, in_use, revision = status(c)
        st = os.stat(data_file(m))
        rss = rss_kib(m.pid)
        print("after 40 MiB of puts: dbSize %d MiB, dbSizeInUse %d MiB, data.mdb %d MiB long, "
              "%d MiB on disk, RSS %d MiB" % (size // MIB, in_use // MIB, st.st_size // MIB,
                                              st.st_blocks * 512 // MIB, rss // 1024))
        check(size > size0 and size >= 40 * MIB, "dbSize %d did not grow past 40 MiB" % size)
        check(size < 256 * MIB, "dbSize %d is far more than was written" % size)
        check(0 < in_use <= size, "dbSizeInUse %d is not within (0, dbSize %d]" % (in_use, size))
        check(st.st_blocks * 512 < 512 * MIB,
              "data.mdb takes %d bytes of disk for 40 MiB of data" % (st.st_blocks * 512))
        check(rss < 1024 * 1024, "the member's RSS is %d KiB" % rss)
        check(client.get("big/039")[0].decode() == value, "a value read back differs")

        for i in range(40):
            client.delete("big/%03d" % i)
        c.etcdctl("compact", str(status(c)[2]), "--physical", check=True)
        c.etcdctl("defrag", check=True, timeout=60)
        after, after_in_use, _ = status(c)
        st = os.stat(data_file(m))
        print("after delete, compact and defrag: dbSize %d KiB, dbSizeInUse %d KiB, data.mdb "
              "%d MiB long, %d KiB on disk" % (after // 1024, after_in_use // 1024,
                                               st.st_size // MIB, st.st_blocks * 512 // 1024))
        check(after < size // 4, "dbSize after defrag is %d, before %d" % (after, size))
        check(st.st_blocks * 512 < 64 * MIB,
              "the defragmented data.mdb takes %d bytes of disk" % (st.st_blocks * 512))
        client.put("after", "defrag")
        check(client.get("after")[0] == b"defrag", "a put after defrag is not read back")
        return check.exit_code(
            c, "an 8 GiB quota costs no memory or disk up front and the store grows in place")


if __name__ == "__main__":
    sys.exit(main())
