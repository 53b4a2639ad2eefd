// The flags and request building of put, get and del, shared by the
// top-level commands and by request lines inside `txn` (etcdctl builds both
// from the same cobra commands: getPutOp, getGetOp, getDelOp).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cmd/etcdppctl/ctl_status.h"
#include "cmd/etcdppctl/flag_set.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::ctl {

struct PutFlags {
  bool prev_kv = false;
  bool ignore_value = false;
  bool ignore_lease = false;
  // Lease ID in hexadecimal, "0" for none.
  std::string lease;

  void Register(FlagSet* flags);
};

struct GetFlags {
  std::string consistency;
  std::string order;
  std::string sort_by;
  bool from_key = false;
  bool keys_only = false;
  bool prefix = false;
  bool print_value_only = false;
  // etcdctl 3.5's --count-only (only valid with -w fields).
  bool count_only = false;
  int64_t limit = 0;
  int64_t rev = 0;

  void Register(FlagSet* flags);
};

struct DelFlags {
  bool prefix = false;
  bool prev_kv = false;
  bool from_key = false;

  void Register(FlagSet* flags);
};

// Reads all of standard input; nullopt when it cannot be read.
using StdinReader = std::function<std::optional<std::string>()>;

// `put <key> [value]`: the value comes from `read_stdin` when omitted.
CtlStatus BuildPut(const std::vector<std::string>& args, const PutFlags& flags,
                   const StdinReader& read_stdin, etcdserverpb::PutRequest* out);
// `get <key> [range_end]`.
CtlStatus BuildGet(const std::vector<std::string>& args, const GetFlags& flags,
                   etcdserverpb::RangeRequest* out);
// `del <key> [range_end]`.
CtlStatus BuildDel(const std::vector<std::string>& args, const DelFlags& flags,
                   etcdserverpb::DeleteRangeRequest* out);

// clientv3.GetPrefixRangeEnd: the smallest key greater than every key with
// this prefix ("\0" when there is none, i.e. all bytes are 0xff).
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace etcdpp::ctl
