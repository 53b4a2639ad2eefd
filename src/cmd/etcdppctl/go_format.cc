#include "cmd/etcdppctl/go_format.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace etcdpp::ctl {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::pair<int32_t, size_t> DecodeRune(std::string_view s, size_t i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1};
  size_t n;
  int32_t r;
  int32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, r = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, r = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, r = b0 & 0x07, min = 0x10000;
  } else {
    return {-1, 1};
  }
  if (i + n > s.size()) return {-1, 1};
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return {-1, 1};
    r = (r << 6) | (b & 0x3F);
  }
  if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) return {-1, 1};
  return {r, n};
}

namespace {

void AppendRune(std::string* out, uint32_t r) {
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

// An approximation of unicode.IsPrint for non-ASCII runes: Go's tables are
// large; the ranges below are the non-printable runes that realistically
// occur in keys (C1 controls, format characters, separators, private use).
bool IsPrintNonAscii(int32_t r) {
  if (r < 0xA0) return false;
  if (r == 0xAD) return false;
  if (r >= 0x200B && r <= 0x200F) return false;
  if (r >= 0x2028 && r <= 0x202E) return false;
  if (r >= 0x2060 && r <= 0x206F) return false;
  if (r == 0xFEFF) return false;
  if (r >= 0xFFF9 && r <= 0xFFFB) return false;
  if (r == 0xFFFE || r == 0xFFFF) return false;
  if (r >= 0xE000 && r <= 0xF8FF) return false;
  if (r >= 0xF0000) return false;
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsGoSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// fmtFrac of time.Duration.String: the fraction of v/10^prec without
// trailing zeros (nothing at all when it is zero); returns v/10^prec.
uint64_t AppendFraction(std::string* rev, uint64_t v, int prec) {
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    int digit = static_cast<int>(v % 10);
    print = print || digit != 0;
    if (print) rev->push_back(static_cast<char>('0' + digit));
    v /= 10;
  }
  if (print) rev->push_back('.');
  return v;
}

void AppendIntReversed(std::string* rev, uint64_t v) {
  if (v == 0) {
    rev->push_back('0');
    return;
  }
  while (v > 0) {
    rev->push_back(static_cast<char>('0' + v % 10));
    v /= 10;
  }
}

}  // namespace

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto [r, width] = DecodeRune(s, i);
    if (r < 0) {
      auto b = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out.push_back(kHexDigits[b >> 4]);
      out.push_back(kHexDigits[b & 0xF]);
      i += width;
      continue;
    }
    if (r == '"' || r == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(r));
    } else if ((r >= 0x20 && r < 0x7F) || (r >= 0x80 && IsPrintNonAscii(r))) {
      out.append(s.substr(i, width));
    } else {
      switch (r) {
        case '\a':
          out += "\\a";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\v':
          out += "\\v";
          break;
        default:
          if (r < ' ' || r == 0x7F) {
            out += "\\x";
            out.push_back(kHexDigits[(r >> 4) & 0xF]);
            out.push_back(kHexDigits[r & 0xF]);
          } else {
            bool big = r > 0xFFFF;
            out += big ? "\\U" : "\\u";
            for (int shift = big ? 28 : 12; shift >= 0; shift -= 4) {
              out.push_back(kHexDigits[(r >> shift) & 0xF]);
            }
          }
      }
    }
    i += width;
  }
  out.push_back('"');
  return out;
}

std::optional<std::string> GoUnquote(std::string_view lit) {
  if (lit.size() < 2) return std::nullopt;
  char quote = lit.front();
  if (quote != lit.back()) return std::nullopt;
  std::string_view body = lit.substr(1, lit.size() - 2);
  if (quote == '`') {
    if (body.find('`') != std::string_view::npos) return std::nullopt;
    std::string out;
    for (char c : body) {
      if (c != '\r') out.push_back(c);  // Go drops carriage returns in raw strings.
    }
    return out;
  }
  if (quote != '"') return std::nullopt;
  std::string out;
  for (size_t i = 0; i < body.size();) {
    char c = body[i];
    if (c == '"' || c == '\n') return std::nullopt;
    if (c != '\\') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= body.size()) return std::nullopt;
    char e = body[i + 1];
    i += 2;
    switch (e) {
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'x':
      case 'u':
      case 'U': {
        size_t n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        if (i + n > body.size()) return std::nullopt;
        uint32_t v = 0;
        for (size_t k = 0; k < n; ++k) {
          int h = HexValue(body[i + k]);
          if (h < 0) return std::nullopt;
          v = v * 16 + static_cast<uint32_t>(h);
        }
        i += n;
        if (e == 'x') {
          out.push_back(static_cast<char>(v));
        } else {
          if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return std::nullopt;
          AppendRune(&out, v);
        }
        break;
      }
      default: {
        if (e < '0' || e > '7') return std::nullopt;
        if (i + 2 > body.size()) return std::nullopt;
        uint32_t v = static_cast<uint32_t>(e - '0');
        for (size_t k = 0; k < 2; ++k) {
          char o = body[i + k];
          if (o < '0' || o > '7') return std::nullopt;
          v = v * 8 + static_cast<uint32_t>(o - '0');
        }
        if (v > 255) return std::nullopt;
        i += 2;
        out.push_back(static_cast<char>(v));
      }
    }
  }
  return out;
}

std::optional<std::string> ScanGoQuoted(std::string_view in, size_t* consumed) {
  size_t i = 0;
  while (i < in.size() && IsGoSpace(in[i])) ++i;
  if (i >= in.size()) return std::nullopt;
  size_t start = i;
  if (in[i] == '`') {
    size_t end = in.find('`', i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    *consumed = end + 1;
    return GoUnquote(in.substr(start, end + 1 - start));
  }
  if (in[i] != '"') return std::nullopt;
  ++i;
  while (i < in.size()) {
    if (in[i] == '\\') {
      i += 2;
      continue;
    }
    if (in[i] == '"') {
      *consumed = i + 1;
      return GoUnquote(in.substr(start, i + 1 - start));
    }
    ++i;
  }
  return std::nullopt;
}

std::string FormatGoDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  bool neg = ns < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-(ns + 1)) + 1 : static_cast<uint64_t>(ns);
  std::string rev;  // Built backwards like Go's buffer.
  if (u < 1000000000ull) {
    if (u == 0) return "0s";
    int prec;
    rev = "s";
    if (u < 1000ull) {
      prec = 0;
      rev.push_back('n');
    } else if (u < 1000000ull) {
      prec = 3;
      rev += "\xb5\xc2";  // "µ" reversed.
    } else {
      prec = 6;
      rev.push_back('m');
    }
    u = AppendFraction(&rev, u, prec);
    AppendIntReversed(&rev, u);
  } else {
    rev = "s";
    u = AppendFraction(&rev, u, 9);
    AppendIntReversed(&rev, u % 60);
    u /= 60;
    if (u > 0) {
      rev.push_back('m');
      AppendIntReversed(&rev, u % 60);
      u /= 60;
      if (u > 0) {
        rev.push_back('h');
        AppendIntReversed(&rev, u);
      }
    }
  }
  if (neg) rev.push_back('-');
  return std::string(rev.rbegin(), rev.rend());
}

std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view s) {
  std::string_view orig = s;
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double value = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      value = value * 10 + (s[i] - '0');
      ++i, digits = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i] - '0') * scale;
        scale /= 10;
        ++i, digits = true;
      }
    }
    if (!digits) return std::nullopt;
    size_t u = i;
    while (u < s.size() && s[u] != '.' && (s[u] < '0' || s[u] > '9')) ++u;
    std::string_view unit = s.substr(i, u - i);
    long double mult;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") {
      mult = 1e3L;
    } else if (unit == "ms") {
      mult = 1e6L;
    } else if (unit == "s") {
      mult = 1e9L;
    } else if (unit == "m") {
      mult = 60e9L;
    } else if (unit == "h") {
      mult = 3600e9L;
    } else {
      return std::nullopt;
    }
    total += value * mult;
    s.remove_prefix(u);
  }
  (void)orig;
  if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  auto ns = static_cast<int64_t>(total);
  return std::chrono::nanoseconds(neg ? -ns : ns);
}

std::string HumanizeBytes(uint64_t n) {
  static const char* const kSizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (n < 10) return std::to_string(n) + " B";
  double e = std::floor(std::log(static_cast<double>(n)) / std::log(1000.0));
  double val = std::floor(static_cast<double>(n) / std::pow(1000.0, e) * 10 + 0.5) / 10;
  char buf[64];
  std::snprintf(buf, sizeof(buf), val < 10 ? "%.1f %s" : "%.0f %s", val,
                kSizes[static_cast<int>(e)]);
  return buf;
}

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(data[i]) << 16) |
                 (static_cast<unsigned char>(data[i + 1]) << 8) |
                 static_cast<unsigned char>(data[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(data[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(data[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string HexEscape(std::string_view data) {
  std::string out;
  out.reserve(data.size() * 4);
  for (char c : data) {
    auto b = static_cast<unsigned char>(c);
    out += "\\x";
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xF]);
  }
  return out;
}

std::optional<int64_t> GoParseInt(std::string_view s, int base, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<int64_t> {
    if (error) *error = "strconv.ParseInt: parsing " + GoQuote(s) + ": " + why;
    return std::nullopt;
  };
  std::string_view digits = s;
  bool neg = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    neg = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty()) return fail("invalid syntax");
  unsigned __int128 v = 0;
  bool overflow = false;
  for (char c : digits) {
    int d = HexValue(c);
    if (d < 0 || d >= base) return fail("invalid syntax");
    v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    if (v > (static_cast<unsigned __int128>(1) << 64)) overflow = true;
  }
  const unsigned __int128 limit = static_cast<unsigned __int128>(1) << 63;
  if (overflow || (!neg && v >= limit) || (neg && v > limit)) return fail("value out of range");
  if (neg) return static_cast<int64_t>(-static_cast<__int128>(v));
  return static_cast<int64_t>(v);
}

std::optional<bool> GoParseBool(std::string_view s, std::string* error) {
  if (s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "true" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "false" || s == "False") {
    return false;
  }
  if (error) *error = "strconv.ParseBool: parsing " + GoQuote(s) + ": invalid syntax";
  return std::nullopt;
}

}  // namespace etcdpp::ctl
