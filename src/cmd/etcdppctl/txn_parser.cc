#include "cmd/etcdppctl/txn_parser.h"

#include "cmd/etcdppctl/flag_set.h"
#include "cmd/etcdppctl/go_format.h"
#include "cmd/etcdppctl/help.h"
#include "cmd/etcdppctl/kv_ops.h"

namespace etcdpp::ctl {
namespace {

using etcdserverpb::Compare;

// RE2's \s: the separators argify's regular expression splits on.
bool IsRegexSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

// Go's unicode.IsSpace for the ASCII range, as fmt's scanner uses it.
bool IsScanSpace(char c) { return IsRegexSpace(c) || c == '\v'; }

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsScanSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsScanSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Reads one line like bufio.Reader.ReadString('\n'): false at end of input
// when no complete line remains.
bool ReadLine(std::istream& in, std::string* line) {
  if (!std::getline(in, *line)) return false;
  return !in.eof();
}

// fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val): returns how many of the
// three items were scanned before the first mismatch.
int ScanCompareTail(std::string_view rest, std::string* key, std::string* op, std::string* val) {
  size_t used = 0;
  std::optional<std::string> k = ScanGoQuoted(rest, &used);
  if (!k) return 0;
  *key = *k;
  rest.remove_prefix(used);
  if (rest.empty() || rest[0] != ')') return 1;
  rest.remove_prefix(1);
  // A space in the format needs one or more spaces in the input (or its end).
  if (!rest.empty() && !IsScanSpace(rest[0])) return 1;
  while (!rest.empty() && IsScanSpace(rest[0])) rest.remove_prefix(1);
  size_t n = 0;
  while (n < rest.size() && !IsScanSpace(rest[n])) ++n;
  if (n == 0) return 1;
  *op = std::string(rest.substr(0, n));
  rest.remove_prefix(n);
  if (!rest.empty() && !IsScanSpace(rest[0])) return 2;
  std::optional<std::string> v = ScanGoQuoted(rest, &used);
  if (!v) return 2;
  *val = *v;
  return 3;
}

CtlStatus InvalidInput(std::string msg) { return CtlStatus::Fail(kExitInvalidInput, msg); }

}  // namespace

CtlStatus Argify(std::string_view s, std::vector<std::string>* words) {
  // Emulates FindAllString of `"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?`.
  std::vector<std::string> raw;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      size_t j = i + 1;
      while (j < s.size() && s[j] != '"') j += (s[j] == '\\' && j + 1 < s.size()) ? 2 : 1;
      if (j < s.size() && s[j] == '"') {
        raw.emplace_back(s.substr(i, j + 1 - i));
        i = j + 1;
        continue;
      }
      ++i;  // No closing quote: no match starts here.
      continue;
    }
    if (c == '\'') {
      size_t j = s.find('\'', i + 1);
      if (j != std::string_view::npos) {
        raw.emplace_back(s.substr(i, j + 1 - i));
        i = j + 1;
        continue;
      }
      ++i;
      continue;
    }
    if (IsRegexSpace(c)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !IsRegexSpace(s[j])) ++j;
    raw.emplace_back(s.substr(i, j - i));
    i = j;
  }
  for (auto& w : raw) {
    if (w[0] == '\'') {
      // etcdctl slices with the number of words, not the word's length.
      size_t end = raw.size() - 1;
      if (raw.size() < 2 || end > w.size()) {
        return InvalidInput("invalid single-quoted argument: " + w);
      }
      w = w.substr(1, end - 1);
    } else if (w[0] == '"') {
      std::optional<std::string> v = GoUnquote(w);
      if (!v) return InvalidInput("invalid syntax");
      w = *v;
    }
  }
  *words = std::move(raw);
  return CtlStatus::Ok();
}

CtlStatus ParseCompare(std::string_view line, Compare* out) {
  std::string text(line);
  size_t lparen = line.find('(');
  if (lparen == std::string_view::npos) return InvalidInput("malformed comparison: " + text);
  std::string target(line.substr(0, lparen));
  std::string key, op, val;
  int n = ScanCompareTail(line.substr(lparen + 1), &key, &op, &val);
  if (n != 3) {
    return InvalidInput("malformed comparison: " + text + "; got " + target + "(" + GoQuote(key) +
                        ") " + op + " " + GoQuote(val));
  }

  Compare cmp;
  cmp.set_key(key);
  std::string why;
  std::optional<int64_t> number;
  if (target == "ver" || target == "version") {
    cmp.set_target(Compare::VERSION);
    if ((number = GoParseInt(val, 10, &why))) cmp.set_version(*number);
  } else if (target == "c" || target == "create") {
    cmp.set_target(Compare::CREATE);
    if ((number = GoParseInt(val, 10, &why))) cmp.set_create_revision(*number);
  } else if (target == "m" || target == "mod") {
    cmp.set_target(Compare::MOD);
    if ((number = GoParseInt(val, 10, &why))) cmp.set_mod_revision(*number);
  } else if (target == "val" || target == "value") {
    cmp.set_target(Compare::VALUE);
    cmp.set_value(val);
    number = 0;
  } else if (target == "lease") {
    cmp.set_target(Compare::LEASE);
    if ((number = GoParseInt(val, 16, &why))) cmp.set_lease(*number);
  } else {
    return InvalidInput("malformed comparison: " + text + " (unknown target " + target + ")");
  }
  if (!number) return InvalidInput("invalid txn compare request: " + text);

  if (op == "=") {
    cmp.set_result(Compare::EQUAL);
  } else if (op == "!=") {
    cmp.set_result(Compare::NOT_EQUAL);
  } else if (op == "<") {
    cmp.set_result(Compare::LESS);
  } else if (op == ">") {
    cmp.set_result(Compare::GREATER);
  } else {
    // etcdctl panics with "Unknown result op" here.
    return InvalidInput("malformed comparison: " + text + " (unknown result op " + op + ")");
  }
  *out = std::move(cmp);
  return CtlStatus::Ok();
}

CtlStatus ParseRequestOp(std::string_view line, etcdserverpb::RequestOp* out) {
  std::string text(line);
  std::vector<std::string> args;
  CtlStatus st = Argify(line, &args);
  if (!st.ok()) return st;
  if (args.size() < 2) return InvalidInput("invalid txn compare request: " + text);

  const std::string& command = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  FlagSet flags;
  bool help = false;
  flags.AddBool("help", 'h', &help, false);
  PutFlags put;
  GetFlags get;
  DelFlags del;
  if (command == "put") {
    put.Register(&flags);
  } else if (command == "get") {
    get.Register(&flags);
  } else if (command == "del") {
    del.Register(&flags);
  } else {
    return InvalidInput("invalid txn request: " + text);
  }
  std::string error;
  std::optional<std::vector<std::string>> positional = flags.Parse(rest, &error);
  if (!positional || help) {
    // The request's flags go to stderr before the error, where etcdctl
    // also prints a usage.
    CtlStatus fail = InvalidInput("invalid txn request: " + text);
    fail.stderr_prefix = TxnRequestUsage(command);
    return fail;
  }
  if (command == "put") {
    // Inside txn the value must be on the line: standard input holds the txn.
    return BuildPut(*positional, put, nullptr, out->mutable_request_put());
  }
  if (command == "get") return BuildGet(*positional, get, out->mutable_request_range());
  return BuildDel(*positional, del, out->mutable_request_delete_range());
}

CtlStatus ReadTxn(std::istream& in, bool interactive, std::ostream& prompt_out,
                  etcdserverpb::TxnRequest* out) {
  auto prompt = [&](const char* text) {
    if (interactive) prompt_out << text << "\n" << std::flush;
  };
  std::string line;
  prompt("compares:");
  while (true) {
    if (!ReadLine(in, &line)) return InvalidInput("EOF");
    std::string_view trimmed = TrimSpace(line);
    if (trimmed.empty()) break;
    CtlStatus st = ParseCompare(trimmed, out->add_compare());
    if (!st.ok()) return st;
  }
  const char* prompts[] = {"success requests (get, put, del):",
                           "failure requests (get, put, del):"};
  for (int section = 0; section < 2; ++section) {
    prompt(prompts[section]);
    while (true) {
      if (!ReadLine(in, &line)) return InvalidInput("EOF");
      std::string_view trimmed = TrimSpace(line);
      if (trimmed.empty()) break;
      auto* op = section == 0 ? out->add_success() : out->add_failure();
      CtlStatus st = ParseRequestOp(trimmed, op);
      if (!st.ok()) return st;
    }
  }
  return CtlStatus::Ok();
}

}  // namespace etcdpp::ctl
