// A flag set with spf13/pflag's grammar and error messages.
//
// etcdctl parses its command line with cobra/pflag; scripts depend on that
// grammar (flags anywhere among positionals, --name=value or --name value,
// --bool or --bool=false, -w json / -wjson, "--" ends flags) and on its exact
// error texts. A general-purpose parser (CLI11) cannot reproduce those, so
// etcdppctl carries this small reimplementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace etcdpp::ctl {

class FlagSet {
 public:
  enum class Type { kBool, kString, kInt64, kDuration, kStringSlice };

  void AddBool(const std::string& name, char shorthand, bool* dst, bool def);
  void AddString(const std::string& name, char shorthand, std::string* dst, std::string def);
  void AddInt64(const std::string& name, char shorthand, int64_t* dst, int64_t def);
  void AddDuration(const std::string& name, char shorthand, std::chrono::nanoseconds* dst,
                   std::chrono::nanoseconds def);
  // Comma-separated values; each occurrence on the command line appends.
  void AddStringSlice(const std::string& name, char shorthand, std::vector<std::string>* dst,
                      std::vector<std::string> def);

  // Parses `args`, setting flags and returning the positional arguments.
  // On failure returns nullopt and sets *error to pflag's message, e.g.
  // "unknown flag: --bogus".
  std::optional<std::vector<std::string>> Parse(const std::vector<std::string>& args,
                                                std::string* error);

  // Sets a flag from a string as the command line would (used for
  // ETCDCTL_* environment variables). False with *error on a bad value.
  bool Set(const std::string& name, const std::string& value, std::string* error);

  // How many positional arguments of the last Parse came before a "--"
  // (all of them when there was none): `watch key -- cmd args` needs it.
  size_t positionals_before_dash() const { return positionals_before_dash_; }

  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  bool IsBool(const std::string& name) const;
  // True when the command line (or Set) gave the flag a value.
  bool Changed(const std::string& name) const;
  std::vector<std::string> Names() const;

 private:
  struct Flag {
    Type type;
    char shorthand = 0;
    void* dst = nullptr;
    bool changed = false;
  };

  Flag* Find(const std::string& name);
  Flag* FindShort(char c);
  bool Assign(const std::string& name, Flag* flag, const std::string& value, std::string* error);

  std::map<std::string, Flag> flags_;
  size_t positionals_before_dash_ = 0;
};

}  // namespace etcdpp::ctl
