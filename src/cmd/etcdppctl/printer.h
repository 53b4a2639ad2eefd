// Printers for etcdctl's output formats (-w simple|json|fields|table|protobuf).
//
// Each printer renders one response type exactly as etcdctl 3.4 does; the
// behaviour of each format is fixed by etcdctl's printer_*.go and checked
// byte for byte against the real etcdctl by tests/e2e/ctl.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::ctl {

enum class OutputFormat { kSimple, kJson, kFields, kTable, kProtobuf };

// Parses a -w value; false for an unknown format.
bool ParseOutputFormat(const std::string& name, OutputFormat* format);
// The name etcdctl uses in "<name> not supported as output format".
const char* OutputFormatName(OutputFormat format);

// One endpoint's answer to `endpoint status`.
struct EndpointStatusRow {
  std::string endpoint;
  etcdserverpb::StatusResponse status;
};

// One endpoint's answer to `endpoint health`.
struct EndpointHealthRow {
  std::string endpoint;
  bool healthy = false;
  // time.Duration.String() of the health probe.
  std::string took;
  // Empty when healthy.
  std::string error;
};

// One endpoint's answer to `endpoint hashkv`.
struct EndpointHashKVRow {
  std::string endpoint;
  etcdserverpb::HashKVResponse hash;
};

struct PrinterOptions {
  OutputFormat format = OutputFormat::kSimple;
  // --hex: keys and values as \xNN (simple format only, like etcdctl).
  bool hex = false;
  // get --print-value-only (simple format only).
  bool value_only = false;
};

class Printer {
 public:
  virtual ~Printer() = default;

  // False when this format cannot render the command's response type; the
  // caller then fails with "<format> not supported as output format".
  virtual bool SupportsKV() const = 0;
  // member list.
  virtual bool SupportsCluster() const = 0;
  // endpoint status / endpoint health.
  virtual bool SupportsEndpoints() const { return SupportsCluster(); }

  virtual void Put(const etcdserverpb::PutResponse& r) = 0;
  virtual void Get(const etcdserverpb::RangeResponse& r) = 0;
  virtual void Del(const etcdserverpb::DeleteRangeResponse& r) = 0;
  virtual void Txn(const etcdserverpb::TxnResponse& r) = 0;
  virtual void MemberList(const etcdserverpb::MemberListResponse& r) = 0;
  virtual void EndpointStatus(const std::vector<EndpointStatusRow>& rows) = 0;
  virtual void EndpointHealth(const std::vector<EndpointHealthRow>& rows) = 0;

  // endpoint hashkv (as endpoint status: every format but protobuf).
  virtual void EndpointHashKV(const std::vector<EndpointHashKVRow>&) {}

  // alarm list / disarm: simple, json, fields, protobuf.
  virtual bool SupportsAlarm() const { return true; }
  virtual void Alarm(const etcdserverpb::AlarmResponse&) {}

  // watch (simple, json and fields only).
  virtual void Watch(const etcdserverpb::WatchResponse&) {}

  // lease commands (simple, json and fields only, like watch).
  virtual bool SupportsLeaseAndWatch() const { return SupportsKV(); }
  virtual void Grant(const etcdserverpb::LeaseGrantResponse&) {}
  virtual void Revoke(int64_t /*id*/, const etcdserverpb::LeaseRevokeResponse&) {}
  virtual void KeepAlive(const etcdserverpb::LeaseKeepAliveResponse&) {}
  virtual void TimeToLive(const etcdserverpb::LeaseTimeToLiveResponse&, bool /*keys*/) {}
  virtual void Leases(const etcdserverpb::LeaseLeasesResponse&) {}

  // member add/remove/update/promote and move-leader: simple lines, or the
  // response itself (json, protobuf: etcdctl's printerRPC). In the other
  // formats etcdctl makes the change and then fails with "<format> not
  // supported as output format"; the commands do the same.
  virtual bool SupportsMemberChange() const { return false; }
  virtual void MemberAdd(const etcdserverpb::MemberAddResponse&) {}
  virtual void MemberRemove(uint64_t /*id*/, const etcdserverpb::MemberRemoveResponse&) {}
  virtual void MemberUpdate(uint64_t /*id*/, const etcdserverpb::MemberUpdateResponse&) {}
  virtual void MemberPromote(uint64_t /*id*/, const etcdserverpb::MemberPromoteResponse&) {}
  virtual void MoveLeader(uint64_t /*leader*/, uint64_t /*target*/,
                          const etcdserverpb::MoveLeaderResponse&) {}
};

// `out` receives the command output; `err` what etcdctl writes to stderr
// (simple `endpoint health` lines).
std::unique_ptr<Printer> NewPrinter(const PrinterOptions& options, std::ostream& out,
                                    std::ostream& err);

// Renders rows like github.com/olekukonko/tablewriter as etcdctl configures
// it: upper-case centred header, right-aligned cells, +---+ borders.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace etcdpp::ctl
