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

  // Each Add* sets *dst to `def` now. `help` is the flag's one-line
  // description in help screens; every flag a command registers has one
  // (tests/unit/ctl checks), the help screens are built from these.
  void AddBool(const std::string& name, char shorthand, bool* dst, bool def, std::string help = "");
  void AddString(const std::string& name, char shorthand, std::string* dst, std::string def,
                 std::string help = "");
  void AddInt64(const std::string& name, char shorthand, int64_t* dst, int64_t def,
                std::string help = "");
  void AddDuration(const std::string& name, char shorthand, std::chrono::nanoseconds* dst,
                   std::chrono::nanoseconds def, std::string help = "");
  // Comma-separated values; each occurrence on the command line appends.
  void AddStringSlice(const std::string& name, char shorthand, std::vector<std::string>* dst,
                      std::vector<std::string> def, std::string help = "");

  // What a help screen shows of one flag.
  struct Description {
    std::string name;
    char shorthand = 0;
    Type type = Type::kBool;
    // The default as a user would type it; empty for false, 0 and "".
    std::string default_text;
    std::string help;
  };
  // All flags, sorted by name.
  std::vector<Description> Describe() const;

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
    std::string default_text;
    std::string help;
  };

  Flag* Find(const std::string& name);
  Flag* FindShort(char c);
  bool Assign(const std::string& name, Flag* flag, const std::string& value, std::string* error);

  std::map<std::string, Flag> flags_;
  size_t positionals_before_dash_ = 0;
};

}  // namespace etcdpp::ctl
