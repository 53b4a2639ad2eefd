#include "cmd/etcdppctl/printer.h"

#include <fmt/format.h>

#include <algorithm>

#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/json_writer.h"

namespace etcdpp::ctl {
namespace {

using etcdserverpb::DeleteRangeResponse;
using etcdserverpb::MemberListResponse;
using etcdserverpb::PutResponse;
using etcdserverpb::RangeResponse;
using etcdserverpb::ResponseHeader;
using etcdserverpb::ResponseOp;
using etcdserverpb::TxnResponse;
using mvccpb::KeyValue;

std::string JoinStrings(const google::protobuf::RepeatedPtrField<std::string>& items,
                        std::string_view sep) {
  std::string out;
  for (int i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

// Go's fmt.Println of a []string: "[a b c]".
std::string GoStringSlice(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out = "[";
  out.append(JoinStrings(items, " ")).append("]");
  return out;
}

const char* GoBool(bool b) { return b ? "true" : "false"; }

// Rows shared by the simple and table formats (etcdctl's make*Table).
std::vector<std::vector<std::string>> MemberListRows(const MemberListResponse& r) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : r.members()) {
    rows.push_back({fmt::format("{:x}", m.id()), m.name().empty() ? "unstarted" : "started",
                    m.name(), JoinStrings(m.peerurls(), ","), JoinStrings(m.clienturls(), ","),
                    GoBool(m.islearner())});
  }
  return rows;
}

std::vector<std::vector<std::string>> EndpointStatusRows(
    const std::vector<EndpointStatusRow>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : list) {
    const auto& st = s.status;
    rows.push_back({s.endpoint, fmt::format("{:x}", st.header().member_id()), st.version(),
                    HumanizeBytes(static_cast<uint64_t>(st.dbsize())),
                    GoBool(st.leader() == st.header().member_id()), GoBool(st.islearner()),
                    std::to_string(st.raftterm()), std::to_string(st.raftindex()),
                    std::to_string(st.raftappliedindex()), JoinStrings(st.errors(), ", ")});
  }
  return rows;
}

std::vector<std::vector<std::string>> EndpointHealthRows(
    const std::vector<EndpointHealthRow>& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : list) {
    rows.push_back({h.endpoint, GoBool(h.healthy), h.took, h.error});
  }
  return rows;
}

void PrintJoinedRows(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out << ", ";
      out << row[i];
    }
    out << "\n";
  }
}

// --- simple -----------------------------------------------------------------

class SimplePrinter : public Printer {
 public:
  SimplePrinter(const PrinterOptions& o, std::ostream& out, std::ostream& err)
      : hex_(o.hex), value_only_(o.value_only), out_(out), err_(err) {}

  bool SupportsKV() const override { return true; }
  bool SupportsCluster() const override { return true; }

  void Put(const PutResponse& r) override {
    out_ << "OK\n";
    if (r.has_prev_kv()) PrintKV(r.prev_kv());
  }
  void Get(const RangeResponse& r) override {
    for (const auto& kv : r.kvs()) PrintKV(kv);
  }
  void Del(const DeleteRangeResponse& r) override {
    out_ << r.deleted() << "\n";
    for (const auto& kv : r.prev_kvs()) PrintKV(kv);
  }
  void Txn(const TxnResponse& r) override {
    out_ << (r.succeeded() ? "SUCCESS\n" : "FAILURE\n");
    for (const auto& op : r.responses()) {
      out_ << "\n";
      switch (op.response_case()) {
        case ResponseOp::kResponseDeleteRange:
          Del(op.response_delete_range());
          break;
        case ResponseOp::kResponsePut:
          Put(op.response_put());
          break;
        case ResponseOp::kResponseRange:
          Get(op.response_range());
          break;
        default:
          out_ << "unexpected response " << op.ShortDebugString() << "\n";
      }
    }
  }
  void MemberList(const MemberListResponse& r) override {
    PrintJoinedRows(out_, MemberListRows(r));
  }
  bool SupportsMemberChange() const override { return true; }
  void MemberAdd(const etcdserverpb::MemberAddResponse& r) override {
    out_ << fmt::format("Member {:16x} added{}to cluster {:16x}\n", r.member().id(),
                        r.member().islearner() ? " as learner " : " ", r.header().cluster_id());
  }
  void MemberRemove(uint64_t id, const etcdserverpb::MemberRemoveResponse& r) override {
    out_ << fmt::format("Member {:16x} removed from cluster {:16x}\n", id, r.header().cluster_id());
  }
  void MemberUpdate(uint64_t id, const etcdserverpb::MemberUpdateResponse& r) override {
    out_ << fmt::format("Member {:16x} updated in cluster {:16x}\n", id, r.header().cluster_id());
  }
  void MemberPromote(uint64_t id, const etcdserverpb::MemberPromoteResponse& r) override {
    out_ << fmt::format("Member {:16x} promoted in cluster {:16x}\n", id, r.header().cluster_id());
  }
  void MoveLeader(uint64_t leader, uint64_t target,
                  const etcdserverpb::MoveLeaderResponse&) override {
    out_ << fmt::format("Leadership transferred from {:x} to {:x}\n", leader, target);
  }
  void EndpointStatus(const std::vector<EndpointStatusRow>& rows) override {
    PrintJoinedRows(out_, EndpointStatusRows(rows));
  }
  void EndpointHashKV(const std::vector<EndpointHashKVRow>& rows) override {
    for (const auto& row : rows) out_ << row.endpoint << ", " << row.hash.hash() << "\n";
  }
  void Alarm(const etcdserverpb::AlarmResponse& r) override {
    // Go's %+v of the alarm: protobuf's compact text form, each set field
    // followed by a space.
    for (const auto& a : r.alarms()) {
      if (a.memberid() != 0) out_ << "memberID:" << a.memberid() << " ";
      if (a.alarm() != etcdserverpb::NONE) {
        out_ << "alarm:" << etcdserverpb::AlarmType_Name(a.alarm()) << " ";
      }
      out_ << "\n";
    }
  }
  void EndpointHealth(const std::vector<EndpointHealthRow>& rows) override {
    for (const auto& h : rows) {
      if (h.error.empty()) {
        err_ << h.endpoint << " is healthy: successfully committed proposal: took = " << h.took
             << "\n";
      } else {
        err_ << h.endpoint << " is unhealthy: failed to commit proposal: " << h.error << "\n";
      }
    }
  }

  void Grant(const etcdserverpb::LeaseGrantResponse& r) override {
    out_ << fmt::format("lease {:016x} granted with TTL({}s)\n", r.id(), r.ttl());
  }
  void Watch(const etcdserverpb::WatchResponse& r) override {
    for (const auto& e : r.events()) {
      out_ << (e.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT") << "\n";
      if (e.has_prev_kv()) PrintKV(e.prev_kv());
      PrintKV(e.kv());
    }
  }
  void Revoke(int64_t id, const etcdserverpb::LeaseRevokeResponse&) override {
    out_ << fmt::format("lease {:016x} revoked\n", id);
  }
  void KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) override {
    out_ << fmt::format("lease {:016x} keepalived with TTL({})\n", r.id(), r.ttl());
  }
  void TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool keys) override {
    if (r.grantedttl() == 0 && r.ttl() == -1) {
      out_ << fmt::format("lease {:016x} already expired\n", r.id());
      return;
    }
    out_ << fmt::format("lease {:016x} granted with TTL({}s), remaining({}s)", r.id(),
                        r.grantedttl(), r.ttl());
    if (keys) out_ << ", attached keys(" << GoStringSlice(r.keys()) << ")";
    out_ << "\n";
  }
  void Leases(const etcdserverpb::LeaseLeasesResponse& r) override {
    out_ << "found " << r.leases_size() << " leases\n";
    for (const auto& l : r.leases()) out_ << fmt::format("{:016x}\n", l.id());
  }

 private:
  void PrintKV(const KeyValue& kv) {
    if (!value_only_) out_ << (hex_ ? HexEscape(kv.key()) : kv.key()) << "\n";
    out_ << (hex_ ? HexEscape(kv.value()) : kv.value()) << "\n";
  }

  bool hex_;
  bool value_only_;
  std::ostream& out_;
  std::ostream& err_;
};

// --- json -------------------------------------------------------------------

void JsonHeader(JsonWriter& w, const ResponseHeader& h) {
  w.Key("header");
  w.BeginObject();
  if (h.cluster_id() != 0) w.Key("cluster_id"), w.Uint(h.cluster_id());
  if (h.member_id() != 0) w.Key("member_id"), w.Uint(h.member_id());
  if (h.revision() != 0) w.Key("revision"), w.Int(h.revision());
  if (h.raft_term() != 0) w.Key("raft_term"), w.Uint(h.raft_term());
  w.EndObject();
}

void JsonKV(JsonWriter& w, const KeyValue& kv) {
  w.BeginObject();
  if (!kv.key().empty()) w.Key("key"), w.Bytes(kv.key());
  if (kv.create_revision() != 0) w.Key("create_revision"), w.Int(kv.create_revision());
  if (kv.mod_revision() != 0) w.Key("mod_revision"), w.Int(kv.mod_revision());
  if (kv.version() != 0) w.Key("version"), w.Int(kv.version());
  if (!kv.value().empty()) w.Key("value"), w.Bytes(kv.value());
  if (kv.lease() != 0) w.Key("lease"), w.Int(kv.lease());
  w.EndObject();
}

void JsonRange(JsonWriter& w, const RangeResponse& r) {
  w.BeginObject();
  if (r.has_header()) JsonHeader(w, r.header());
  if (r.kvs_size() > 0) {
    w.Key("kvs");
    w.BeginArray();
    for (const auto& kv : r.kvs()) JsonKV(w, kv);
    w.EndArray();
  }
  if (r.more()) w.Key("more"), w.Bool(true);
  if (r.count() != 0) w.Key("count"), w.Int(r.count());
  w.EndObject();
}

void JsonPut(JsonWriter& w, const PutResponse& r) {
  w.BeginObject();
  if (r.has_header()) JsonHeader(w, r.header());
  if (r.has_prev_kv()) w.Key("prev_kv"), JsonKV(w, r.prev_kv());
  w.EndObject();
}

void JsonDel(JsonWriter& w, const DeleteRangeResponse& r) {
  w.BeginObject();
  if (r.has_header()) JsonHeader(w, r.header());
  if (r.deleted() != 0) w.Key("deleted"), w.Int(r.deleted());
  if (r.prev_kvs_size() > 0) {
    w.Key("prev_kvs");
    w.BeginArray();
    for (const auto& kv : r.prev_kvs()) JsonKV(w, kv);
    w.EndArray();
  }
  w.EndObject();
}

void JsonTxn(JsonWriter& w, const TxnResponse& r) {
  w.BeginObject();
  if (r.has_header()) JsonHeader(w, r.header());
  if (r.succeeded()) w.Key("succeeded"), w.Bool(true);
  if (r.responses_size() > 0) {
    w.Key("responses");
    w.BeginArray();
    for (const auto& op : r.responses()) {
      // ResponseOp's oneof is a Go interface field without a json tag: it is
      // written as "Response" wrapping the oneof struct's Go field name.
      w.BeginObject();
      w.Key("Response");
      switch (op.response_case()) {
        case ResponseOp::kResponseRange:
          w.BeginObject(), w.Key("ResponseRange"), JsonRange(w, op.response_range()), w.EndObject();
          break;
        case ResponseOp::kResponsePut:
          w.BeginObject(), w.Key("ResponsePut"), JsonPut(w, op.response_put()), w.EndObject();
          break;
        case ResponseOp::kResponseDeleteRange:
          w.BeginObject(), w.Key("ResponseDeleteRange");
          JsonDel(w, op.response_delete_range());
          w.EndObject();
          break;
        case ResponseOp::kResponseTxn:
          w.BeginObject(), w.Key("ResponseTxn"), JsonTxn(w, op.response_txn()), w.EndObject();
          break;
        default:
          w.Null();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

// clientv3's lease responses embed *pb.ResponseHeader: its fields appear
// inline in the response object, not under "header".
void JsonInlineHeader(JsonWriter& w, const ResponseHeader& h) {
  if (h.cluster_id() != 0) w.Key("cluster_id"), w.Uint(h.cluster_id());
  if (h.member_id() != 0) w.Key("member_id"), w.Uint(h.member_id());
  if (h.revision() != 0) w.Key("revision"), w.Int(h.revision());
  if (h.raft_term() != 0) w.Key("raft_term"), w.Uint(h.raft_term());
}

void JsonStringArray(JsonWriter& w, const char* name,
                     const google::protobuf::RepeatedPtrField<std::string>& items) {
  if (items.empty()) return;
  w.Key(name);
  w.BeginArray();
  for (const auto& s : items) w.String(s);
  w.EndArray();
}

void JsonMember(JsonWriter& w, const etcdserverpb::Member& m) {
  w.BeginObject();
  if (m.id() != 0) w.Key("ID"), w.Uint(m.id());
  if (!m.name().empty()) w.Key("name"), w.String(m.name());
  JsonStringArray(w, "peerURLs", m.peerurls());
  JsonStringArray(w, "clientURLs", m.clienturls());
  if (m.islearner()) w.Key("isLearner"), w.Bool(true);
  w.EndObject();
}

void JsonMemberArray(JsonWriter& w,
                     const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members) {
  if (members.empty()) return;
  w.Key("members");
  w.BeginArray();
  for (const auto& m : members) JsonMember(w, m);
  w.EndArray();
}

// MemberList, MemberRemove, MemberUpdate and MemberPromote responses: a
// header and the members after the change.
template <typename Response>
void JsonMembersResponse(JsonWriter& w, const Response& r) {
  w.BeginObject();
  if (r.has_header()) JsonHeader(w, r.header());
  JsonMemberArray(w, r.members());
  w.EndObject();
}

class JsonPrinter : public Printer {
 public:
  explicit JsonPrinter(std::ostream& out) : out_(out) {}

  bool SupportsKV() const override { return true; }
  bool SupportsCluster() const override { return true; }

  void Put(const PutResponse& r) override {
    Emit([&](JsonWriter& w) { JsonPut(w, r); });
  }
  void Get(const RangeResponse& r) override {
    Emit([&](JsonWriter& w) { JsonRange(w, r); });
  }
  void Del(const DeleteRangeResponse& r) override {
    Emit([&](JsonWriter& w) { JsonDel(w, r); });
  }
  void Txn(const TxnResponse& r) override {
    Emit([&](JsonWriter& w) { JsonTxn(w, r); });
  }
  void MemberList(const MemberListResponse& r) override {
    Emit([&](JsonWriter& w) { JsonMembersResponse(w, r); });
  }
  bool SupportsMemberChange() const override { return true; }
  void MemberAdd(const etcdserverpb::MemberAddResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      if (r.has_header()) JsonHeader(w, r.header());
      if (r.has_member()) w.Key("member"), JsonMember(w, r.member());
      JsonMemberArray(w, r.members());
      w.EndObject();
    });
  }
  void MemberRemove(uint64_t, const etcdserverpb::MemberRemoveResponse& r) override {
    Emit([&](JsonWriter& w) { JsonMembersResponse(w, r); });
  }
  void MemberUpdate(uint64_t, const etcdserverpb::MemberUpdateResponse& r) override {
    Emit([&](JsonWriter& w) { JsonMembersResponse(w, r); });
  }
  void MemberPromote(uint64_t, const etcdserverpb::MemberPromoteResponse& r) override {
    Emit([&](JsonWriter& w) { JsonMembersResponse(w, r); });
  }
  void MoveLeader(uint64_t, uint64_t, const etcdserverpb::MoveLeaderResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      if (r.has_header()) JsonHeader(w, r.header());
      w.EndObject();
    });
  }
  void EndpointStatus(const std::vector<EndpointStatusRow>& rows) override {
    EmitPerEndpoint(rows, "Status", [](JsonWriter& w, const EndpointStatusRow& row) {
      const auto& s = row.status;
      if (s.has_header()) JsonHeader(w, s.header());
      if (!s.version().empty()) w.Key("version"), w.String(s.version());
      if (s.dbsize() != 0) w.Key("dbSize"), w.Int(s.dbsize());
      if (s.leader() != 0) w.Key("leader"), w.Uint(s.leader());
      if (s.raftindex() != 0) w.Key("raftIndex"), w.Uint(s.raftindex());
      if (s.raftterm() != 0) w.Key("raftTerm"), w.Uint(s.raftterm());
      if (s.raftappliedindex() != 0) w.Key("raftAppliedIndex"), w.Uint(s.raftappliedindex());
      JsonStringArray(w, "errors", s.errors());
      if (s.dbsizeinuse() != 0) w.Key("dbSizeInUse"), w.Int(s.dbsizeinuse());
      if (s.islearner()) w.Key("isLearner"), w.Bool(true);
    });
  }
  void EndpointHashKV(const std::vector<EndpointHashKVRow>& rows) override {
    EmitPerEndpoint(rows, "HashKV", [](JsonWriter& w, const EndpointHashKVRow& row) {
      const auto& h = row.hash;
      if (h.has_header()) JsonHeader(w, h.header());
      if (h.hash() != 0) w.Key("hash"), w.Uint(h.hash());
      if (h.compact_revision() != 0) w.Key("compact_revision"), w.Int(h.compact_revision());
    });
  }
  void Alarm(const etcdserverpb::AlarmResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      if (r.has_header()) JsonHeader(w, r.header());
      if (r.alarms_size() > 0) {
        w.Key("alarms");
        w.BeginArray();
        for (const auto& a : r.alarms()) {
          w.BeginObject();
          if (a.memberid() != 0) w.Key("memberID"), w.Uint(a.memberid());
          if (a.alarm() != etcdserverpb::NONE) w.Key("alarm"), w.Int(a.alarm());
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
    });
  }
  void Watch(const etcdserverpb::WatchResponse& r) override {
    // clientv3.WatchResponse: a value Header, then Events (null when none).
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      w.Key("Header");
      w.BeginObject();
      JsonInlineHeader(w, r.header());
      w.EndObject();
      w.Key("Events");
      if (r.events_size() == 0) {
        w.Null();
      } else {
        w.BeginArray();
        for (const auto& e : r.events()) {
          w.BeginObject();
          if (e.type() != mvccpb::Event::PUT) w.Key("type"), w.Int(e.type());
          if (e.has_kv()) w.Key("kv"), JsonKV(w, e.kv());
          if (e.has_prev_kv()) w.Key("prev_kv"), JsonKV(w, e.prev_kv());
          w.EndObject();
        }
        w.EndArray();
      }
      w.Key("CompactRevision"), w.Int(r.compact_revision());
      w.Key("Canceled"), w.Bool(r.canceled());
      w.Key("Created"), w.Bool(r.created());
      w.EndObject();
    });
  }
  void Grant(const etcdserverpb::LeaseGrantResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      JsonInlineHeader(w, r.header());
      w.Key("ID"), w.Int(r.id());
      w.Key("TTL"), w.Int(r.ttl());
      w.Key("Error"), w.String(r.error());
      w.EndObject();
    });
  }
  void Revoke(int64_t, const etcdserverpb::LeaseRevokeResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      if (r.has_header()) JsonHeader(w, r.header());
      w.EndObject();
    });
  }
  void KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      JsonInlineHeader(w, r.header());
      w.Key("ID"), w.Int(r.id());
      w.Key("TTL"), w.Int(r.ttl());
      w.EndObject();
    });
  }
  void TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      JsonInlineHeader(w, r.header());
      w.Key("id"), w.Int(r.id());
      w.Key("ttl"), w.Int(r.ttl());
      w.Key("granted-ttl"), w.Int(r.grantedttl());
      w.Key("keys");
      if (r.keys_size() == 0) {
        w.Null();
      } else {
        w.BeginArray();
        for (const auto& k : r.keys()) w.Bytes(k);
        w.EndArray();
      }
      w.EndObject();
    });
  }
  void Leases(const etcdserverpb::LeaseLeasesResponse& r) override {
    Emit([&](JsonWriter& w) {
      w.BeginObject();
      JsonInlineHeader(w, r.header());
      w.Key("leases");
      w.BeginArray();
      for (const auto& l : r.leases()) {
        w.BeginObject();
        w.Key("id"), w.Int(l.id());
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    });
  }
  void EndpointHealth(const std::vector<EndpointHealthRow>& rows) override {
    Emit([&](JsonWriter& w) {
      w.BeginArray();
      for (const auto& h : rows) {
        w.BeginObject();
        w.Key("endpoint"), w.String(h.endpoint);
        w.Key("health"), w.Bool(h.healthy);
        w.Key("took"), w.String(h.took);
        if (!h.error.empty()) w.Key("error"), w.String(h.error);
        w.EndObject();
      }
      w.EndArray();
    });
  }

 private:
  template <typename Fn>
  void Emit(Fn fn) {
    JsonWriter w;
    fn(w);
    out_ << w.str() << "\n";
  }

  // etcdctl's per-endpoint arrays: [{"Endpoint": ..., "<inner>": {...}}].
  template <typename Row, typename Fn>
  void EmitPerEndpoint(const std::vector<Row>& rows, const char* inner, Fn fields) {
    Emit([&](JsonWriter& w) {
      w.BeginArray();
      for (const Row& row : rows) {
        w.BeginObject();
        w.Key("Endpoint"), w.String(row.endpoint);
        w.Key(inner);
        w.BeginObject();
        fields(w, row);
        w.EndObject();
        w.EndObject();
      }
      w.EndArray();
    });
  }

  std::ostream& out_;
};

// --- fields -----------------------------------------------------------------

class FieldsPrinter : public Printer {
 public:
  explicit FieldsPrinter(std::ostream& out) : out_(out) {}

  bool SupportsKV() const override { return true; }
  bool SupportsCluster() const override { return true; }

  void Put(const PutResponse& r) override {
    Header(r.header());
    if (r.has_prev_kv()) KV("Prev", r.prev_kv());
  }
  void Get(const RangeResponse& r) override {
    Header(r.header());
    for (const auto& kv : r.kvs()) KV("", kv);
    out_ << "\"More\" : " << GoBool(r.more()) << "\n";
    out_ << "\"Count\" : " << r.count() << "\n";
  }
  void Del(const DeleteRangeResponse& r) override {
    Header(r.header());
    out_ << "\"Deleted\" : " << r.deleted() << "\n";
    for (const auto& kv : r.prev_kvs()) KV("Prev", kv);
  }
  void Txn(const TxnResponse& r) override {
    Header(r.header());
    out_ << "\"Succeeded\" : " << GoBool(r.succeeded()) << "\n";
    for (const auto& op : r.responses()) {
      switch (op.response_case()) {
        case ResponseOp::kResponseDeleteRange:
          Del(op.response_delete_range());
          break;
        case ResponseOp::kResponsePut:
          Put(op.response_put());
          break;
        case ResponseOp::kResponseRange:
          Get(op.response_range());
          break;
        default:
          out_ << "\"Unknown\" : " << GoQuote(op.ShortDebugString()) << "\n";
      }
    }
  }
  void MemberList(const MemberListResponse& r) override {
    Header(r.header());
    for (const auto& m : r.members()) {
      out_ << "\"ID\" : " << m.id() << "\n";
      out_ << "\"Name\" : " << GoQuote(m.name()) << "\n";
      for (const auto& u : m.peerurls()) out_ << "\"PeerURL\" : " << GoQuote(u) << "\n";
      for (const auto& u : m.clienturls()) out_ << "\"ClientURL\" : " << GoQuote(u) << "\n";
      out_ << "\"IsLearner\" : " << GoBool(m.islearner()) << "\n";
      out_ << "\n";
    }
  }
  void EndpointStatus(const std::vector<EndpointStatusRow>& rows) override {
    for (const auto& row : rows) {
      const auto& s = row.status;
      Header(s.header());
      out_ << "\"Version\" : " << GoQuote(s.version()) << "\n";
      out_ << "\"DBSize\" : " << s.dbsize() << "\n";
      out_ << "\"Leader\" : " << s.leader() << "\n";
      out_ << "\"IsLearner\" : " << GoBool(s.islearner()) << "\n";
      out_ << "\"RaftIndex\" : " << s.raftindex() << "\n";
      out_ << "\"RaftTerm\" : " << s.raftterm() << "\n";
      out_ << "\"RaftAppliedIndex\" : " << s.raftappliedindex() << "\n";
      out_ << "\"Errors\" : " << GoStringSlice(s.errors()) << "\n";
      out_ << "\"Endpoint\" : " << GoQuote(row.endpoint) << "\n";
      out_ << "\n";
    }
  }
  void EndpointHashKV(const std::vector<EndpointHashKVRow>& rows) override {
    for (const auto& row : rows) {
      Header(row.hash.header());
      out_ << "\"Endpoint\" : " << GoQuote(row.endpoint) << "\n";
      out_ << "\"Hash\" : " << row.hash.hash() << "\n";
      out_ << "\n";
    }
  }
  void Alarm(const etcdserverpb::AlarmResponse& r) override {
    // etcd 3.4 answers alarm requests without a header (etcdctl then
    // crashes in this format); print it only when there is one.
    if (r.has_header()) Header(r.header());
    for (const auto& a : r.alarms()) {
      out_ << "\"MemberID\" : " << a.memberid() << "\n";
      out_ << "\"AlarmType\" : " << etcdserverpb::AlarmType_Name(a.alarm()) << "\n";
    }
  }
  void EndpointHealth(const std::vector<EndpointHealthRow>& rows) override {
    for (const auto& h : rows) {
      out_ << "\"Endpoint\" : " << GoQuote(h.endpoint) << "\n";
      out_ << "\"Health\" : " << GoBool(h.healthy) << "\n";
      out_ << "\"Took\" : " << h.took << "\n";
      out_ << "\"Error\" : " << h.error << "\n";
      out_ << "\n";
    }
  }
  void Watch(const etcdserverpb::WatchResponse& r) override {
    Header(r.header());
    for (const auto& e : r.events()) {
      out_ << "\"Type\" : " << (e.type() == mvccpb::Event::DELETE ? "DELETE" : "PUT") << "\n";
      if (e.has_prev_kv()) KV("Prev", e.prev_kv());
      KV("", e.kv());
    }
  }
  void Grant(const etcdserverpb::LeaseGrantResponse& r) override {
    Header(r.header());
    out_ << "\"ID\" : " << r.id() << "\n";
    out_ << "\"TTL\" : " << r.ttl() << "\n";
  }
  void Revoke(int64_t, const etcdserverpb::LeaseRevokeResponse& r) override { Header(r.header()); }
  void KeepAlive(const etcdserverpb::LeaseKeepAliveResponse& r) override {
    Header(r.header());
    out_ << "\"ID\" : " << r.id() << "\n";
    out_ << "\"TTL\" : " << r.ttl() << "\n";
  }
  void TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse& r, bool) override {
    Header(r.header());
    out_ << "\"ID\" : " << r.id() << "\n";
    out_ << "\"TTL\" : " << r.ttl() << "\n";
    out_ << "\"GrantedTTL\" : " << r.grantedttl() << "\n";
    for (const auto& k : r.keys()) out_ << "\"Key\" : " << GoQuote(k) << "\n";
  }
  void Leases(const etcdserverpb::LeaseLeasesResponse& r) override {
    Header(r.header());
    for (const auto& l : r.leases()) out_ << "\"ID\" : " << l.id() << "\n";
  }

 private:
  void Header(const ResponseHeader& h) {
    out_ << "\"ClusterID\" : " << h.cluster_id() << "\n";
    out_ << "\"MemberID\" : " << h.member_id() << "\n";
    out_ << "\"Revision\" : " << h.revision() << "\n";
    out_ << "\"RaftTerm\" : " << h.raft_term() << "\n";
  }
  void KV(const char* prefix, const KeyValue& kv) {
    out_ << "\"" << prefix << "Key\" : " << GoQuote(kv.key()) << "\n";
    out_ << "\"" << prefix << "CreateRevision\" : " << kv.create_revision() << "\n";
    out_ << "\"" << prefix << "ModRevision\" : " << kv.mod_revision() << "\n";
    out_ << "\"" << prefix << "Version\" : " << kv.version() << "\n";
    out_ << "\"" << prefix << "Value\" : " << GoQuote(kv.value()) << "\n";
    out_ << "\"" << prefix << "Lease\" : " << kv.lease() << "\n";
  }

  std::ostream& out_;
};

// --- table ------------------------------------------------------------------

class TablePrinter : public Printer {
 public:
  explicit TablePrinter(std::ostream& out) : out_(out) {}

  bool SupportsKV() const override { return false; }
  bool SupportsCluster() const override { return true; }

  void Put(const PutResponse&) override {}
  void Get(const RangeResponse&) override {}
  void Del(const DeleteRangeResponse&) override {}
  void Txn(const TxnResponse&) override {}
  void MemberList(const MemberListResponse& r) override {
    out_ << RenderTable({"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"},
                        MemberListRows(r));
  }
  void EndpointStatus(const std::vector<EndpointStatusRow>& rows) override {
    out_ << RenderTable({"endpoint", "ID", "version", "db size", "is leader", "is learner",
                         "raft term", "raft index", "raft applied index", "errors"},
                        EndpointStatusRows(rows));
  }
  void EndpointHealth(const std::vector<EndpointHealthRow>& rows) override {
    out_ << RenderTable({"endpoint", "health", "took", "error"}, EndpointHealthRows(rows));
  }
  void EndpointHashKV(const std::vector<EndpointHashKVRow>& rows) override {
    std::vector<std::vector<std::string>> cells;
    for (const auto& row : rows) cells.push_back({row.endpoint, std::to_string(row.hash.hash())});
    out_ << RenderTable({"endpoint", "hash"}, cells);
  }
  bool SupportsAlarm() const override { return false; }

 private:
  std::ostream& out_;
};

// --- protobuf ---------------------------------------------------------------

// The wire encoding of the response, as etcdctl's pbPrinter writes it.
class ProtobufPrinter : public Printer {
 public:
  explicit ProtobufPrinter(std::ostream& out) : out_(out) {}

  bool SupportsKV() const override { return true; }
  bool SupportsCluster() const override { return true; }
  bool SupportsEndpoints() const override { return false; }
  bool SupportsLeaseAndWatch() const override { return false; }

  void Put(const PutResponse& r) override { out_ << r.SerializeAsString(); }
  void Get(const RangeResponse& r) override { out_ << r.SerializeAsString(); }
  void Del(const DeleteRangeResponse& r) override { out_ << r.SerializeAsString(); }
  void Txn(const TxnResponse& r) override { out_ << r.SerializeAsString(); }
  void MemberList(const MemberListResponse& r) override { out_ << r.SerializeAsString(); }
  bool SupportsMemberChange() const override { return true; }
  void MemberAdd(const etcdserverpb::MemberAddResponse& r) override {
    out_ << r.SerializeAsString();
  }
  void MemberRemove(uint64_t, const etcdserverpb::MemberRemoveResponse& r) override {
    out_ << r.SerializeAsString();
  }
  void MemberUpdate(uint64_t, const etcdserverpb::MemberUpdateResponse& r) override {
    out_ << r.SerializeAsString();
  }
  void MemberPromote(uint64_t, const etcdserverpb::MemberPromoteResponse& r) override {
    out_ << r.SerializeAsString();
  }
  void MoveLeader(uint64_t, uint64_t, const etcdserverpb::MoveLeaderResponse& r) override {
    out_ << r.SerializeAsString();
  }
  void EndpointStatus(const std::vector<EndpointStatusRow>&) override {}
  void EndpointHealth(const std::vector<EndpointHealthRow>&) override {}
  void Alarm(const etcdserverpb::AlarmResponse& r) override { out_ << r.SerializeAsString(); }

 private:
  std::ostream& out_;
};

}  // namespace

bool ParseOutputFormat(const std::string& name, OutputFormat* format) {
  if (name == "simple") {
    *format = OutputFormat::kSimple;
  } else if (name == "json") {
    *format = OutputFormat::kJson;
  } else if (name == "fields") {
    *format = OutputFormat::kFields;
  } else if (name == "table") {
    *format = OutputFormat::kTable;
  } else if (name == "protobuf") {
    *format = OutputFormat::kProtobuf;
  } else {
    return false;
  }
  return true;
}

const char* OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kSimple:
      return "simple";
    case OutputFormat::kJson:
      return "json";
    case OutputFormat::kFields:
      return "fields";
    case OutputFormat::kTable:
      return "table";
    case OutputFormat::kProtobuf:
      return "protobuf";
  }
  return "";
}

std::unique_ptr<Printer> NewPrinter(const PrinterOptions& options, std::ostream& out,
                                    std::ostream& err) {
  switch (options.format) {
    case OutputFormat::kSimple:
      return std::make_unique<SimplePrinter>(options, out, err);
    case OutputFormat::kJson:
      return std::make_unique<JsonPrinter>(out);
    case OutputFormat::kFields:
      return std::make_unique<FieldsPrinter>(out);
    case OutputFormat::kTable:
      return std::make_unique<TablePrinter>(out);
    case OutputFormat::kProtobuf:
      return std::make_unique<ProtobufPrinter>(out);
  }
  return nullptr;
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::string> titles;
  for (const auto& h : header) {
    std::string t = h;
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::toupper(c); });
    titles.push_back(t);
  }
  std::vector<size_t> width(titles.size());
  for (size_t i = 0; i < titles.size(); ++i) width[i] = titles[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string line = "+";
  for (size_t w : width) line += std::string(w + 2, '-') + "+";
  line += "\n";

  std::string out = line + "|";
  for (size_t i = 0; i < titles.size(); ++i) {
    size_t gap = width[i] - titles[i].size();
    size_t left = gap / 2;
    // Appended piece by piece: `"literal" + std::string` inserts at the
    // front of a temporary, which GCC 12 at -O3 misreads as an overlapping
    // copy (-Wrestrict).
    out.append(1 + left, ' ').append(titles[i]).append(gap - left, ' ').append(" |");
  }
  out += "\n" + line;
  for (const auto& row : rows) {
    out += "|";
    for (size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < row.size() ? row[i] : "";
      out.append(1 + width[i] - cell.size(), ' ').append(cell).append(" |");
    }
    out += "\n";
  }
  out += line;
  return out;
}

}  // namespace etcdpp::ctl
