#include "v2store/json.h"

#include <cstdio>
#include <ctime>

namespace etcdpp::v2store {
namespace {

void AppendNode(const NodeView& n, std::string* out) {
  // Go writes a separator before every field but the first one present.
  bool first = true;
  auto field = [&](const char* name) {
    if (!first) out->push_back(',');
    first = false;
    out->push_back('"');
    out->append(name);
    out->append("\":");
  };
  out->push_back('{');
  if (!n.key.empty()) {
    field("key");
    out->append(JsonString(n.key));
  }
  if (n.value) {
    field("value");
    out->append(JsonString(*n.value));
  }
  if (n.dir) {
    field("dir");
    out->append("true");
  }
  if (n.expiration_ns != 0) {
    field("expiration");
    out->push_back('"');
    out->append(Rfc3339Nano(n.expiration_ns));
    out->push_back('"');
  }
  if (n.ttl != 0) {
    field("ttl");
    out->append(std::to_string(n.ttl));
  }
  if (!n.nodes.empty()) {
    field("nodes");
    out->push_back('[');
    for (size_t i = 0; i < n.nodes.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendNode(n.nodes[i], out);
    }
    out->push_back(']');
  }
  if (n.modified_index != 0) {
    field("modifiedIndex");
    out->append(std::to_string(n.modified_index));
  }
  if (n.created_index != 0) {
    field("createdIndex");
    out->append(std::to_string(n.created_index));
  }
  out->push_back('}');
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t len = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    return 0;
  }
  return len;
}

}  // namespace

std::string JsonString(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        default:
          // Control characters and the HTML-sensitive <, >, & as \u00XX.
          if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            out.append("\\u00");
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const size_t len = Utf8Length(s, i);
    if (len == 0) {
      out.append("\\ufffd");  // Go replaces invalid bytes one at a time.
      ++i;
      continue;
    }
    const std::string_view seq = s.substr(i, len);
    if (seq == "\xE2\x80\xA8") {
      out.append("\\u2028");
    } else if (seq == "\xE2\x80\xA9") {
      out.append("\\u2029");
    } else {
      out.append(seq);
    }
    i += len;
  }
  out.push_back('"');
  return out;
}

std::string Rfc3339Nano(int64_t unix_ns) {
  int64_t secs = unix_ns / 1000000000;
  int64_t nanos = unix_ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out = buf;
  if (nanos != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09lld", static_cast<long long>(nanos));
    std::string f = frac;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out.push_back('Z');
  return out;
}

std::string EventJson(const Event& e, bool omit_nodes) {
  std::string out = "{\"action\":" + JsonString(e.action);
  if (!omit_nodes) {
    out.append(",\"node\":");
    AppendNode(e.node, &out);
    if (e.prev_node) {
      out.append(",\"prevNode\":");
      AppendNode(*e.prev_node, &out);
    }
  }
  out.append("}\n");
  return out;
}

std::string ErrorJson(const Error& error) {
  std::string out = "{\"errorCode\":" + std::to_string(static_cast<int>(error.code)) +
                    ",\"message\":" + JsonString(ErrorMessage(error.code));
  if (!error.cause.empty()) out.append(",\"cause\":" + JsonString(error.cause));
  out.append(",\"index\":" + std::to_string(error.index) + "}\n");
  return out;
}

}  // namespace etcdpp::v2store
