#include "cmd/etcdppctl/kv_ops.h"

#include <algorithm>

#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {
namespace {

using etcdserverpb::RangeRequest;

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

}  // namespace

void PutFlags::Register(FlagSet* flags) {
  flags->AddBool("prev-kv", 0, &prev_kv, false, "also print the key's value before this write");
  flags->AddBool("ignore-value", 0, &ignore_value, false,
                 "keep the current value (only the lease changes); takes no value argument");
  flags->AddBool("ignore-lease", 0, &ignore_lease, false, "keep the key's current lease");
  flags->AddString("lease", 0, &lease, "0", "attach the key to this lease (hexadecimal ID)");
}

void GetFlags::Register(FlagSet* flags) {
  flags->AddString("consistency", 0, &consistency, "l",
                   "l: linearizable read (through the leader), s: serializable (this member's "
                   "possibly stale copy)");
  flags->AddString("order", 0, &order, "", "ASCEND or DESCEND (with --sort-by; KEY if none)");
  flags->AddString("sort-by", 0, &sort_by, "",
                   "sort by CREATE, KEY, MODIFY, VALUE or VERSION (ascending unless --order)");
  flags->AddBool("from-key", 0, &from_key, false, "every key from <key> on (byte order)");
  flags->AddBool("keys-only", 0, &keys_only, false, "print keys without their values");
  flags->AddBool("prefix", 0, &prefix, false, "every key that starts with <key>");
  flags->AddBool("print-value-only", 0, &print_value_only, false,
                 "print values without their keys (simple format only)");
  flags->AddBool("count-only", 0, &count_only, false,
                 "print only how many keys match (fields format only)");
  flags->AddInt64("limit", 0, &limit, 0, "return at most this many keys (0: no limit)");
  flags->AddInt64("rev", 0, &rev, 0, "read as of this revision (0: the latest)");
}

void DelFlags::Register(FlagSet* flags) {
  flags->AddBool("prefix", 0, &prefix, false, "delete every key that starts with <key>");
  flags->AddBool("prev-kv", 0, &prev_kv, false, "print the deleted keys and values");
  flags->AddBool("from-key", 0, &from_key, false, "delete every key from <key> on (byte order)");
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  for (int i = static_cast<int>(end.size()) - 1; i >= 0; --i) {
    if (static_cast<unsigned char>(end[i]) < 0xff) {
      end[i] = static_cast<char>(static_cast<unsigned char>(end[i]) + 1);
      end.resize(i + 1);
      return end;
    }
  }
  return std::string(1, '\0');
}

CtlStatus BuildPut(const std::vector<std::string>& args, const PutFlags& flags,
                   const StdinReader& read_stdin, etcdserverpb::PutRequest* out) {
  const char* kNeedArgs = "put command needs 1 argument and input from stdin or 2 arguments";
  if (args.empty()) return CtlStatus::Fail(kExitBadArgs, kNeedArgs);
  if (flags.ignore_value && args.size() > 1) {
    return CtlStatus::Fail(kExitBadArgs,
                           "put command needs only 1 argument when 'ignore-value' is set");
  }
  std::string value;
  if (!flags.ignore_value) {
    if (args.size() > 1) {
      value = args[1];
    } else {
      std::optional<std::string> in = read_stdin ? read_stdin() : std::nullopt;
      if (!in || in->empty()) return CtlStatus::Fail(kExitBadArgs, kNeedArgs);
      value = *in;
    }
  }
  std::string why;
  std::optional<int64_t> lease = GoParseInt(flags.lease, 16, &why);
  if (!lease) {
    return CtlStatus::Fail(kExitBadArgs, "bad lease ID (" + why + "), expecting ID in Hex");
  }
  out->set_key(args[0]);
  out->set_value(value);
  out->set_lease(*lease);
  out->set_prev_kv(flags.prev_kv);
  out->set_ignore_value(flags.ignore_value);
  out->set_ignore_lease(flags.ignore_lease);
  return CtlStatus::Ok();
}

CtlStatus BuildGet(const std::vector<std::string>& args, const GetFlags& flags, RangeRequest* out) {
  if (args.empty()) {
    return CtlStatus::Fail(
        kExitBadArgs,
        "get command needs one argument as key and an optional argument as range_end");
  }
  if (flags.prefix && flags.from_key) {
    return CtlStatus::Fail(
        kExitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  if (flags.consistency == "s") {
    out->set_serializable(true);
  } else if (flags.consistency != "l") {
    return CtlStatus::Fail(kExitBadFeature,
                           "unknown consistency flag " + GoQuote(flags.consistency));
  }
  std::string key = args[0];
  if (args.size() > 1) {
    if (flags.prefix || flags.from_key) {
      return CtlStatus::Fail(kExitBadArgs,
                             "too many arguments, only accept one argument when `--prefix` or "
                             "`--from-key` is set");
    }
    out->set_range_end(args[1]);
  }
  out->set_limit(flags.limit);
  if (flags.rev > 0) out->set_revision(flags.rev);

  auto order = RangeRequest::NONE;
  std::string order_name = Upper(flags.order);
  if (order_name == "ASCEND") {
    order = RangeRequest::ASCEND;
  } else if (order_name == "DESCEND") {
    order = RangeRequest::DESCEND;
  } else if (!order_name.empty()) {
    return CtlStatus::Fail(kExitBadFeature, "bad sort order " + flags.order);
  }
  auto target = RangeRequest::KEY;
  std::string target_name = Upper(flags.sort_by);
  if (target_name == "CREATE") {
    target = RangeRequest::CREATE;
  } else if (target_name == "KEY") {
    target = RangeRequest::KEY;
  } else if (target_name == "MODIFY") {
    target = RangeRequest::MOD;
  } else if (target_name == "VALUE") {
    target = RangeRequest::VALUE;
  } else if (target_name == "VERSION") {
    target = RangeRequest::VERSION;
  } else if (!target_name.empty()) {
    return CtlStatus::Fail(kExitBadFeature, "bad sort target " + flags.sort_by);
  }
  // clientv3.WithSort: keys already come back in ascending key order, so an
  // ascending sort by key is sent as no sort at all.
  if (target == RangeRequest::KEY && order == RangeRequest::ASCEND) order = RangeRequest::NONE;
  out->set_sort_order(order);
  out->set_sort_target(target);

  if (flags.prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      out->set_range_end(std::string(1, '\0'));
    } else {
      out->set_range_end(PrefixRangeEnd(key));
    }
  }
  if (flags.from_key) {
    if (key.empty()) key = std::string(1, '\0');
    out->set_range_end(std::string(1, '\0'));
  }
  out->set_key(key);
  out->set_keys_only(flags.keys_only);
  out->set_count_only(flags.count_only);
  return CtlStatus::Ok();
}

CtlStatus BuildDel(const std::vector<std::string>& args, const DelFlags& flags,
                   etcdserverpb::DeleteRangeRequest* out) {
  if (args.empty() || args.size() > 2) {
    return CtlStatus::Fail(
        kExitBadArgs,
        "del command needs one argument as key and an optional argument as range_end");
  }
  if (flags.prefix && flags.from_key) {
    return CtlStatus::Fail(
        kExitBadArgs, "`--prefix` and `--from-key` cannot be set at the same time, choose one");
  }
  std::string key = args[0];
  if (args.size() > 1) {
    if (flags.prefix || flags.from_key) {
      return CtlStatus::Fail(kExitBadArgs,
                             "too many arguments, only accept one argument when `--prefix` or "
                             "`--from-key` is set");
    }
    out->set_range_end(args[1]);
  }
  if (flags.prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      out->set_range_end(std::string(1, '\0'));
    } else {
      out->set_range_end(PrefixRangeEnd(key));
    }
  }
  out->set_prev_kv(flags.prev_kv);
  if (flags.from_key) {
    if (key.empty()) key = std::string(1, '\0');
    out->set_range_end(std::string(1, '\0'));
  }
  out->set_key(key);
  return CtlStatus::Ok();
}

}  // namespace etcdpp::ctl
