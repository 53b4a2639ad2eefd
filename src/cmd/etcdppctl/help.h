// etcdppctl's help screens, generated from the command table (commands.h)
// and the flags each command registers. Their wording is etcdppctl's own;
// no program is expected to parse them (unlike command output and error
// lines, which follow etcdctl 3.4).
#pragma once

#include <string>
#include <string_view>

#include "cmd/etcdppctl/flag_set.h"

namespace etcdpp::ctl {

// The screen for "" (the root), a group ("member") or a command ("get",
// "member list"); the root screen for anything else.
std::string HelpText(std::string_view path);

// True when HelpText has a screen of its own for `path`.
bool HasHelp(std::string_view path);

// The short usage printed before the error when a request line inside `txn`
// ("put", "get" or "del") has a bad flag.
std::string TxnRequestUsage(std::string_view op);

// The flag table of a help screen: one line per flag, descriptions aligned.
std::string FormatFlags(const FlagSet& flags);

}  // namespace etcdpp::ctl
