// The v2 API's JSON, byte for byte as etcd writes it (Go's encoding/json:
// fields in declaration order, omitempty, HTML-safe escaping, RFC 3339
// times with nanoseconds and trailing zeros trimmed). Clients parse it and
// tests compare it with etcd's, so the shape is a fact, not a choice.
#pragma once

#include <string>
#include <string_view>

#include "v2store/errors.h"
#include "v2store/event.h"

namespace etcdpp::v2store {

// {"action":...,"node":{...},"prevNode":{...}} plus a newline. With
// `omit_nodes` (noValueOnSuccess), node and prevNode are left out. A
// refresh is not marked: etcd 3.4's replies do not show it.
std::string EventJson(const Event& event, bool omit_nodes = false);
// {"errorCode":...,"message":...,"cause":...,"index":...} plus a newline.
std::string ErrorJson(const Error& error);

// A JSON string literal as Go's encoder writes it.
std::string JsonString(std::string_view text);
// Unix nanoseconds as Go's time.Time marshals in UTC.
std::string Rfc3339Nano(int64_t unix_ns);

}  // namespace etcdpp::v2store
