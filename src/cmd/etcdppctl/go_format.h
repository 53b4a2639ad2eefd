// Text conversions that reproduce Go's standard library byte for byte.
//
// etcdctl is a Go program: its output is made of strconv.Quote, time.Duration's
// String, go-humanize and encoding/base64. etcdppctl promises identical bytes,
// so each of those formatters is re-implemented here with Go's exact rules.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace etcdpp::ctl {

// strconv.Quote: a double-quoted Go string literal; printable runes stay,
// others become \a \b \f \n \r \t \v, \xNN (bytes of invalid UTF-8 and ASCII
// controls), \uNNNN or \UNNNNNNNN.
// Decodes the UTF-8 rune at s[i] like Go's utf8.DecodeRuneInString: the
// rune and its length, or (-1, 1) for a byte that does not start a valid
// encoding (overlong, surrogate, out of range or truncated).
std::pair<int32_t, size_t> DecodeRune(std::string_view s, size_t i);

std::string GoQuote(std::string_view s);

// strconv.Unquote for a double-quoted or back-quoted literal (the whole of
// `literal`, quotes included). nullopt on a syntax error.
std::optional<std::string> GoUnquote(std::string_view literal);

// The token fmt's %q verb reads from `in`: leading spaces skipped, then a
// "..." literal (backslash escapes the next byte) or a `...` literal. On
// success returns the unquoted value and sets *consumed to the bytes read.
std::optional<std::string> ScanGoQuoted(std::string_view in, size_t* consumed);

// time.Duration.String(): "1.5s", "2m0s", "1.757729ms", "0s".
std::string FormatGoDuration(std::chrono::nanoseconds d);

// time.ParseDuration: "5s", "500ms", "1m30s", "1.5h". nullopt when invalid.
std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view s);

// go-humanize Bytes(): SI units (base 1000), "20 kB", "1.2 MB", "9 B".
std::string HumanizeBytes(uint64_t n);

// encoding/base64 StdEncoding (with padding), as encoding/json writes []byte.
std::string Base64Encode(std::string_view data);

// etcdctl's --hex form of a byte string: every byte as \xNN (lower case).
std::string HexEscape(std::string_view data);

// strconv.ParseInt(s, base, 64) with Go's error text:
// `strconv.ParseInt: parsing "abc": invalid syntax` or `...: value out of range`.
std::optional<int64_t> GoParseInt(std::string_view s, int base, std::string* error);

// strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False.
std::optional<bool> GoParseBool(std::string_view s, std::string* error);

}  // namespace etcdpp::ctl
