#include "api/maintenance_service.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "api/answered_writes.h"
#include "api/auth_check.h"
#include "api/call_gate.h"
#include "api/grpc_status.h"
#include "mvcc/kv_store.h"

namespace etcdpp::api {
namespace {

// The size of every Snapshot chunk but the last two (etcd's size).
constexpr size_t kSnapshotChunkBytes = 32 * 1024;
constexpr size_t kSha256Bytes = 32;

// An open file that no directory names: it vanishes with its last
// descriptor, so a crash leaves nothing behind.
Result<int> OpenUnnamedFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  // File systems without O_TMPFILE: a named file, unlinked at once.
  std::string path = dir + "/snapshot-stream-XXXXXX";
  fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return Status::IOError("create a file in " + dir + ": " + std::strerror(errno));
  ::unlink(path.c_str());
  return fd;
}

// Writes Snapshot's messages. A thread of its own copies the store to the
// unnamed file and starts the first write; after that, each OnWriteDone
// (gRPC's thread) reads and sends the next chunk. The stream's state is
// touched by one of these at a time: the copier until its StartWrite, then
// the write callbacks one after another.
class SnapshotStream final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  explicit SnapshotStream(std::shared_ptr<mvcc::KvStore> store) : store_(std::move(store)) {
    sha_ = EVP_MD_CTX_new();
    copier_ = std::thread([this] { Copy(); });
  }

  void OnWriteDone(bool ok) override {
    // Not ok: the client went away; nothing more can be sent.
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream cancelled"));
    SendNext();
  }

  void OnDone() override {
    if (copier_.get_id() == std::this_thread::get_id()) {
      copier_.detach();
    } else {
      copier_.join();
    }
    delete this;
  }

 private:
  ~SnapshotStream() override {
    if (fd_ >= 0) ::close(fd_);
    EVP_MD_CTX_free(sha_);
  }

  void Copy() {
    Status st = CopyStore();
    // The copy holds everything needed: the store may be replaced now.
    store_.reset();
    if (!st.ok()) return Finish(ToGrpcStatus(st));
    SendNext();
  }

  Status CopyStore() {
    if (sha_ == nullptr || EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr) != 1) {
      return Status::Internal("no SHA-256 digest available");
    }
    const std::string dir = std::filesystem::path(store_->dir()).parent_path().string();
    auto fd = OpenUnnamedFile(dir);
    if (!fd.ok()) return fd.status();
    fd_ = *fd;
    ETCDPP_RETURN_IF_ERROR(store_->CopyToFd(fd_));
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) return Status::IOError(std::string("snapshot copy size: ") + std::strerror(errno));
    size_ = static_cast<uint64_t>(end);
    return Status::OK();
  }

  void SendNext() {
    response_.Clear();
    if (sent_ < size_) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(kSnapshotChunkBytes, size_ - sent_));
      std::string* blob = response_.mutable_blob();
      blob->resize(want);
      size_t got = 0;
      while (got < want) {
        const ssize_t n =
            ::pread(fd_, blob->data() + got, want - got, static_cast<off_t>(sent_ + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          return Finish(ToGrpcStatus(Status::IOError("reading the snapshot copy failed")));
        }
        got += static_cast<size_t>(n);
      }
      EVP_DigestUpdate(sha_, blob->data(), blob->size());
      sent_ += want;
      response_.set_remaining_bytes(size_ - sent_);
      return StartWrite(&response_);
    }
    if (!digest_sent_) {
      digest_sent_ = true;
      unsigned char digest[kSha256Bytes];
      unsigned int length = 0;
      EVP_DigestFinal_ex(sha_, digest, &length);
      response_.set_blob(reinterpret_cast<const char*>(digest), length);
      response_.set_remaining_bytes(0);
      return StartWrite(&response_);
    }
    Finish(grpc::Status::OK);
  }

  std::shared_ptr<mvcc::KvStore> store_;
  EVP_MD_CTX* sha_ = nullptr;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t sent_ = 0;
  bool digest_sent_ = false;
  etcdserverpb::SnapshotResponse response_;
  std::thread copier_;
};

// A Snapshot call refused before anything was sent.
class RefusedSnapshot final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  explicit RefusedSnapshot(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest*,
                                                     etcdserverpb::StatusResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kYes)) return refused;
  cluster_->FillHeader(response->mutable_header());
  std::shared_ptr<mvcc::KvStore> store = cluster_->store();
  response->mutable_header()->set_revision(cluster_->revision());
  response->set_version(kEtcdApiVersion);
  response->set_dbsize(store->DbSizeBytes());
  response->set_dbsizeinuse(store->DbSizeInUseBytes());
  response->set_leader(cluster_->leader_id());
  response->set_raftindex(cluster_->commit_index());
  response->set_raftterm(cluster_->term());
  response->set_raftappliedindex(cluster_->applied_index());
  if (backend_ != nullptr) {
    // etcd lists each raised alarm here in protobuf's text form.
    for (const etcdserverpb::AlarmMember& a : backend_->Alarms()) {
      response->add_errors("memberID:" + std::to_string(a.memberid()) +
                           " alarm:" + etcdserverpb::AlarmType_Name(a.alarm()) + " ");
    }
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::HashKVRequest* request,
                                                     etcdserverpb::HashKVResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  if (auto* refused = RefuseUnlessAdminForMaintenance(auth_, context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  WaitForAnsweredWrites(barrier_);
  // The view must not outlive the store it reads.
  std::shared_ptr<mvcc::KvStore> store = cluster_->store();
  auto view = store->Read();
  if (!view.ok()) {
    reactor->Finish(ToGrpcStatus(view.status()));
    return reactor;
  }
  auto hash = (*view)->HashKV(request->revision());
  if (!hash.ok()) {
    reactor->Finish(ToGrpcStatus(hash.status()));
    return reactor;
  }
  cluster_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(hash->rev);
  response->set_hash(hash->hash);
  response->set_compact_revision(hash->compact_rev);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Hash(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::HashRequest*,
                                                   etcdserverpb::HashResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  WaitForAnsweredWrites(barrier_);
  std::shared_ptr<mvcc::KvStore> store = cluster_->store();
  const int64_t revision = store->CurrentRevision();
  auto hash = store->HashBackend();
  if (!hash.ok()) {
    reactor->Finish(ToGrpcStatus(hash.status()));
    return reactor;
  }
  cluster_->FillHeader(response->mutable_header());
  response->mutable_header()->set_revision(revision);
  response->set_hash(hash->hash);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::AlarmRequest* request,
                                                    etcdserverpb::AlarmResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // etcd's Alarm reply carries no header (its applier leaves it unset).
  if (request->action() == etcdserverpb::AlarmRequest::GET) {
    server::BackendAdmin* backend = backend_;
    auto list = [backend, request, response, reactor](const etcdpp::Status& st) {
      if (st.ok() && backend != nullptr) {
        for (etcdserverpb::AlarmMember& a : backend->Alarms()) {
          if (request->alarm() != etcdserverpb::NONE && a.alarm() != request->alarm()) continue;
          if (request->memberid() != 0 && a.memberid() != request->memberid()) continue;
          *response->add_alarms() = std::move(a);
        }
      }
      reactor->Finish(ToGrpcStatus(st));
    };
    if (barrier_ == nullptr) {
      list(etcdpp::Status::OK());
    } else {
      barrier_->WaitLinearizable(std::move(list));
    }
    return reactor;
  }
  if (backend_ == nullptr) {
    reactor->Finish(ToGrpcStatus(Status::Unimplemented("this member cannot change alarms")));
    return reactor;
  }
  backend_->ChangeAlarm(*request, response,
                        [reactor](const etcdpp::Status& st) { reactor->Finish(ToGrpcStatus(st)); });
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(
    grpc::CallbackServerContext* context, const etcdserverpb::DefragmentRequest*,
    etcdserverpb::DefragmentResponse* response) {
  // etcd 3.4 refuses Defragment on a learner, as every call but Status and
  // serializable reads.
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (backend_ == nullptr) {
    reactor->Finish(ToGrpcStatus(Status::Unimplemented("this member cannot defragment")));
    return reactor;
  }
  const server::ClusterView* cluster = cluster_;
  backend_->Defragment([cluster, reactor, response](const etcdpp::Status& st) {
    if (st.ok()) cluster->FillHeader(response->mutable_header());
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* context, const etcdserverpb::SnapshotRequest*) {
  // etcd serves no stream to a learner.
  etcdpp::Status refused = CheckCall(*cluster_, *context, LearnerServes::kNo);
  if (!refused.ok()) return new RefusedSnapshot(ToGrpcStatus(refused));
  WaitForAnsweredWrites(barrier_);
  return new SnapshotStream(cluster_->store());
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(
    grpc::CallbackServerContext* context, const etcdserverpb::MoveLeaderRequest* request,
    etcdserverpb::MoveLeaderResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto timeout = cluster_->request_timeout();
  const auto client_left = std::chrono::duration_cast<std::chrono::milliseconds>(
      context->deadline() - std::chrono::system_clock::now());
  if (client_left > std::chrono::milliseconds(0) && client_left < timeout) timeout = client_left;
  const server::ClusterView* cluster = cluster_;
  admin_->MoveLeader(request->targetid(), timeout,
                     [cluster, reactor, response](const etcdpp::Status& st) {
                       if (st.ok()) {
                         cluster->FillHeader(response->mutable_header());
                         response->mutable_header()->set_revision(cluster->revision());
                       }
                       reactor->Finish(ToGrpcStatus(st));
                     });
  return reactor;
}

namespace {

template <typename Response>
void FillMembers(const server::ClusterView* server, Response* response) {
  // etcd's Cluster replies carry no revision (its header has only IDs and term).
  server->FillHeader(response->mutable_header());
  for (const server::Member& m : server->Members()) {
    etcdserverpb::Member* out = response->add_members();
    out->set_id(m.id);
    out->set_name(m.name);
    for (const std::string& u : m.peer_urls) out->add_peerurls(u);
    for (const std::string& u : m.client_urls) out->add_clienturls(u);
    out->set_islearner(m.is_learner);
  }
}

// The callback for a membership change: answers with the members after it.
template <typename Response>
server::ProposeCallback FinishWithMembers(const server::ClusterView* server,
                                          grpc::ServerUnaryReactor* reactor, Response* response) {
  return [server, reactor, response](const etcdpp::Status& st) {
    if (st.ok()) FillMembers(server, response);
    reactor->Finish(ToGrpcStatus(st));
  };
}

}  // namespace

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::MemberListRequest*,
                                                     etcdserverpb::MemberListResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  FillMembers(cluster_, response);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberAdd(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::MemberAddRequest* request,
                                                    etcdserverpb::MemberAddResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  if (auto* refused = RefuseUnlessAdmin(auth_, context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto member = std::make_shared<server::Member>();
  member->peer_urls.assign(request->peerurls().begin(), request->peerurls().end());
  member->is_learner = request->islearner();
  const server::ClusterView* server = cluster_;
  admin_->AddMember(member.get(), [server, reactor, response, member](const etcdpp::Status& st) {
    if (st.ok()) {
      FillMembers(server, response);
      etcdserverpb::Member* added = response->mutable_member();
      added->set_id(member->id);
      for (const std::string& u : member->peer_urls) added->add_peerurls(u);
      added->set_islearner(member->is_learner);
    }
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberRemove(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberRemoveRequest* request,
    etcdserverpb::MemberRemoveResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  if (auto* refused = RefuseUnlessAdmin(auth_, context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admin_->RemoveMember(request->id(), FinishWithMembers(cluster_, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberUpdate(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberUpdateRequest* request,
    etcdserverpb::MemberUpdateResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  if (auto* refused = RefuseUnlessAdmin(auth_, context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admin_->UpdateMember(
      request->id(),
      std::vector<std::string>(request->peerurls().begin(), request->peerurls().end()),
      FinishWithMembers(cluster_, reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* ClusterService::MemberPromote(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberPromoteRequest* request,
    etcdserverpb::MemberPromoteResponse* response) {
  if (auto* refused = RefuseCall(*cluster_, context, LearnerServes::kNo)) return refused;
  if (auto* refused = RefuseUnlessAdmin(auth_, context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  admin_->PromoteMember(request->id(), FinishWithMembers(cluster_, reactor, response));
  return reactor;
}

}  // namespace etcdpp::api
