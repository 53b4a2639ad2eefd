// PeerService: the receiving half of the transport, the RaftPeer gRPC
// service. Internal to the transport module.
//
// Message streams are read by a reactor on gRPC's callback threads, one
// read at a time per stream, so each stream's messages reach the Handler
// in arrival order. Snapshots and unary calls run on gRPC's
// synchronous-server threads, one per call (a snapshot's file writes and
// fsyncs block).
#pragma once

#include <atomic>
#include <cstdint>

#include "transport/transport.h"
#include "transportpb/transport.grpc.pb.h"

namespace etcdpp::transport {

class PeerService final
    : public transportpb::RaftPeer::WithCallbackMethod_Stream<transportpb::RaftPeer::Service> {
 public:
  class InboundStream;
  // Both must outlive the service (the transport owns it).
  PeerService(Transport* transport, Handler* handler, const TransportOptions& options);

  // Read by a reactor on gRPC's callback threads, one read at a time, so
  // a stream's messages reach the Handler in the order they were sent.
  grpc::ServerReadReactor<transportpb::MessageBatch>* Stream(grpc::CallbackServerContext* ctx,
                                                             transportpb::StreamAck* ack) override;
  grpc::Status Snapshot(grpc::ServerContext* ctx,
                        grpc::ServerReader<transportpb::SnapshotChunk>* reader,
                        transportpb::SnapshotAck* ack) override;
  // Waits (this gRPC thread) for the Handler's answer, at most until the
  // call's deadline or cancellation.
  grpc::Status Call(grpc::ServerContext* ctx, const transportpb::PeerCall* request,
                    transportpb::PeerCallReply* reply) override;
  grpc::Status Members(grpc::ServerContext* ctx, const transportpb::MembersRequest* request,
                       transportpb::MembersResponse* response) override;

 private:
  // Validates the handshake of an inbound call; the error to answer with, or
  // OK with *from set.
  grpc::Status Admit(const grpc::ServerContextBase& ctx, uint64_t* from) const;
  // Receives a snapshot into a new file under snapshot_dir; on success sets
  // *msg and *path. Removes the file on failure.
  grpc::Status ReceiveSnapshotFile(uint64_t from,
                                   grpc::ServerReader<transportpb::SnapshotChunk>* reader,
                                   raftpb::Message* msg, std::string* path);

  Transport* const transport_;
  Handler* const handler_;
  const TransportOptions options_;
  std::atomic<uint64_t> next_file_seq_{0};
};

}  // namespace etcdpp::transport
