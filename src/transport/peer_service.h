// PeerService: the receiving half of the transport, the RaftPeer gRPC
// service. Internal to the transport module.
//
// Runs on gRPC's synchronous-server threads, one per inbound call, so each
// inbound stream is read (and its messages handed to the Handler) by a
// single thread in arrival order.
#pragma once

#include <atomic>
#include <cstdint>

#include "transport/transport.h"
#include "transportpb/transport.grpc.pb.h"

namespace etcdpp::transport {

class PeerService final : public transportpb::RaftPeer::Service {
 public:
  // Both must outlive the service (the transport owns it).
  PeerService(Transport* transport, Handler* handler, const TransportOptions& options);

  grpc::Status Stream(grpc::ServerContext* ctx,
                      grpc::ServerReader<transportpb::MessageBatch>* reader,
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
  grpc::Status Admit(const grpc::ServerContext& ctx, uint64_t* from) const;
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
