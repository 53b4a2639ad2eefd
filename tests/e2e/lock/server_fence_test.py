#!/usr/bin/python3
"""etcdpp's server-side fencing (src/api/write_fence.h) through python etcd3's gRPC stubs.

    /usr/bin/python3 server_fence_test.py --server build/bin/etcdpp

A write carrying the metadata etcdpp-fence-key-bin / etcdpp-fence-revision
is applied only while that key still has that create revision; otherwise it
fails with FAILED_PRECONDITION "etcdpp: fencing token is stale" and changes
nothing. etcdpp only: etcd 3.4 ignores the metadata.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster  # noqa: E402

SERVER = None


class ServerFenceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = cluster.Cluster(SERVER, size=1).__enter__()
        cls.client = cls.cluster.client(0)
        from etcd3 import etcdrpc
        cls.rpc = etcdrpc
        cls.kv = etcdrpc.KVStub(cls.client.channel)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def fence(self, key, rev):
        return [("etcdpp-fence-key-bin", key), ("etcdpp-fence-revision", str(rev))]

    def holder(self, name):
        """A lock-like key on a lease: (key, its create revision, lease)."""
        lease = self.client.lease(30)
        key = f"{name}/{lease.id:x}".encode()
        self.client.put(key, b"", lease=lease)
        return key, self.client.get(key)[1].create_revision, lease

    def assert_stale(self, call):
        import grpc
        with self.assertRaises(grpc.RpcError) as e:
            call()
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(e.exception.details(), "etcdpp: fencing token is stale")

    def test_put_delete_txn_while_the_fence_holds_then_refused(self):
        rpc = self.rpc
        key, rev, lease = self.holder("jobs")
        put = self.kv.Put(rpc.PutRequest(key=b"counter", value=b"1", prev_kv=True), 5,
                          metadata=self.fence(key, rev))
        self.assertGreater(put.header.revision, rev)
        self.assertEqual(self.client.get("counter")[0], b"1")
        txn = self.kv.Txn(rpc.TxnRequest(
            compare=[rpc.Compare(key=b"counter", target=rpc.Compare.VALUE,
                                 result=rpc.Compare.EQUAL, value=b"1")],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"counter", value=b"2"))]),
            5, metadata=self.fence(key, rev))
        self.assertTrue(txn.succeeded)
        self.assertEqual(len(txn.responses), 1)
        self.assertEqual(self.client.get("counter")[0], b"2")
        # A token that is not the key's create revision: refused, nothing written.
        before = self.client.get_response("counter").header.revision
        self.assert_stale(lambda: self.kv.Put(rpc.PutRequest(key=b"counter", value=b"x"), 5,
                                              metadata=self.fence(key, rev + 1000)))
        self.assertEqual(self.client.get("counter")[0], b"2")
        self.assertEqual(self.client.get_response("counter").header.revision, before)
        # The holder's lease ends: every kind of write with its token is refused.
        lease.revoke()
        self.assert_stale(lambda: self.kv.Put(rpc.PutRequest(key=b"counter", value=b"late"), 5,
                                              metadata=self.fence(key, rev)))
        self.assert_stale(lambda: self.kv.DeleteRange(rpc.DeleteRangeRequest(key=b"counter"), 5,
                                                      metadata=self.fence(key, rev)))
        self.assert_stale(lambda: self.kv.Txn(rpc.TxnRequest(success=[rpc.RequestOp(
            request_put=rpc.PutRequest(key=b"counter", value=b"late"))]), 5,
            metadata=self.fence(key, rev)))
        self.assertEqual(self.client.get("counter")[0], b"2")
        # A new holder of the same name gets a new token; the old one stays stale.
        key2, rev2, lease2 = self.holder("jobs")
        self.assertGreater(rev2, rev)
        d = self.kv.DeleteRange(rpc.DeleteRangeRequest(key=b"counter"), 5,
                                metadata=self.fence(key2, rev2))
        self.assertEqual(d.deleted, 1)
        lease2.revoke()

    def test_malformed_fences_are_refused_and_plain_writes_unchanged(self):
        import grpc
        rpc = self.rpc
        for metadata in ([("etcdpp-fence-key-bin", b"k")],
                         [("etcdpp-fence-revision", "5")],
                         [("etcdpp-fence-key-bin", b"k"), ("etcdpp-fence-revision", "five")],
                         [("etcdpp-fence-key-bin", b"k"), ("etcdpp-fence-revision", "0")]):
            with self.assertRaises(grpc.RpcError) as e:
                self.kv.Put(rpc.PutRequest(key=b"m", value=b"v"), 5, metadata=metadata)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, metadata)
        self.assertIsNone(self.client.get("m")[0])
        self.kv.Put(rpc.PutRequest(key=b"m", value=b"v"), 5)
        self.assertEqual(self.client.get("m")[0], b"v")


def main():
    global SERVER
    args, rest = cluster.server_arg_parser(__doc__).parse_known_args()
    SERVER = args.server
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
