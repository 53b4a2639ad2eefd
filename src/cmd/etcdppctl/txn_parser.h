// etcdctl's `txn` input language.
//
// Standard input holds three sections, each ended by an empty line:
//
//   mod("key1") > "0"          compares: <target>("<key>") <op> "<value>"
//   value("key2") = "v"          targets: ver|version c|create m|mod
//                                         val|value lease (hex ID)
//                                ops:     = != < >
//
//   put key1 "new value"       success requests: put/get/del with their flags
//   get key --prefix
//
//   del key3                   failure requests
//
// Every line, the last empty one included, must end with '\n': reaching end
// of input anywhere is the error "EOF", as with etcdctl's bufio.ReadString.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/etcdppctl/ctl_status.h"
#include "etcdserverpb/rpc.pb.h"

namespace etcdpp::ctl {

// etcdctl's argify: splits a request line into words. "double quoted" words
// are Go string literals; 'single quoted' words keep etcdctl's slicing quirk
// (word[1 : number_of_words-1]).
CtlStatus Argify(std::string_view line, std::vector<std::string>* words);

// One compare line, e.g. `mod("key1") > "0"`.
CtlStatus ParseCompare(std::string_view line, etcdserverpb::Compare* out);

// One request line, e.g. `put key1 value --prev-kv`.
CtlStatus ParseRequestOp(std::string_view line, etcdserverpb::RequestOp* out);

// Reads a whole transaction. In interactive mode the section prompts
// ("compares:", ...) are written to `prompt_out` before each section.
CtlStatus ReadTxn(std::istream& in, bool interactive, std::ostream& prompt_out,
                  etcdserverpb::TxnRequest* out);

}  // namespace etcdpp::ctl
