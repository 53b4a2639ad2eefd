#include "cmd/etcdppctl/flag_set.h"

#include "cmd/etcdppctl/go_format.h"

namespace etcdpp::ctl {

void FlagSet::AddBool(const std::string& name, char shorthand, bool* dst, bool def,
                      std::string help) {
  *dst = def;
  flags_[name] = Flag{Type::kBool, shorthand, dst, false, def ? "true" : "", std::move(help)};
}

void FlagSet::AddString(const std::string& name, char shorthand, std::string* dst, std::string def,
                        std::string help) {
  std::string shown = def.empty() ? "" : GoQuote(def);
  *dst = std::move(def);
  flags_[name] = Flag{Type::kString, shorthand, dst, false, std::move(shown), std::move(help)};
}

void FlagSet::AddInt64(const std::string& name, char shorthand, int64_t* dst, int64_t def,
                       std::string help) {
  *dst = def;
  flags_[name] =
      Flag{Type::kInt64, shorthand, dst, false, def ? std::to_string(def) : "", std::move(help)};
}

void FlagSet::AddDuration(const std::string& name, char shorthand, std::chrono::nanoseconds* dst,
                          std::chrono::nanoseconds def, std::string help) {
  *dst = def;
  flags_[name] =
      Flag{Type::kDuration, shorthand, dst, false, def.count() ? FormatGoDuration(def) : "",
           std::move(help)};
}

void FlagSet::AddStringSlice(const std::string& name, char shorthand, std::vector<std::string>* dst,
                             std::vector<std::string> def, std::string help) {
  std::string shown;
  for (const std::string& v : def) shown += (shown.empty() ? "" : ",") + v;
  *dst = std::move(def);
  flags_[name] = Flag{Type::kStringSlice, shorthand, dst, false, std::move(shown), std::move(help)};
}

std::vector<FlagSet::Description> FlagSet::Describe() const {
  std::vector<Description> out;
  for (const auto& [name, flag] : flags_) {
    out.push_back({name, flag.shorthand, flag.type, flag.default_text, flag.help});
  }
  return out;
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  auto it = flags_.find(name);
  return it == flags_.end() ? nullptr : &it->second;
}

FlagSet::Flag* FlagSet::FindShort(char c) {
  for (auto& [name, flag] : flags_) {
    if (flag.shorthand == c) return &flag;
  }
  return nullptr;
}

bool FlagSet::IsBool(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.type == Type::kBool;
}

bool FlagSet::Changed(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.changed;
}

std::vector<std::string> FlagSet::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, flag] : flags_) names.push_back(name);
  return names;
}

bool FlagSet::Assign(const std::string& name, Flag* flag, const std::string& value,
                     std::string* error) {
  std::string why;
  bool ok = true;
  switch (flag->type) {
    case Type::kBool: {
      auto v = GoParseBool(value, &why);
      if (v) *static_cast<bool*>(flag->dst) = *v;
      ok = v.has_value();
      break;
    }
    case Type::kString:
      *static_cast<std::string*>(flag->dst) = value;
      break;
    case Type::kInt64: {
      auto v = GoParseInt(value, 10, &why);
      if (v) *static_cast<int64_t*>(flag->dst) = *v;
      ok = v.has_value();
      break;
    }
    case Type::kDuration: {
      auto v = ParseGoDuration(value);
      if (v) {
        *static_cast<std::chrono::nanoseconds*>(flag->dst) = *v;
      } else {
        why = "time: invalid duration " + GoQuote(value);
      }
      ok = v.has_value();
      break;
    }
    case Type::kStringSlice: {
      auto* dst = static_cast<std::vector<std::string>*>(flag->dst);
      if (!flag->changed) dst->clear();
      if (value.empty()) break;  // pflag reads "" as no values at all.
      size_t start = 0;
      while (true) {
        size_t comma = value.find(',', start);
        dst->push_back(value.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      break;
    }
  }
  if (!ok) {
    std::string flag_name =
        flag->shorthand ? std::string("-") + flag->shorthand + ", --" + name : "--" + name;
    *error = "invalid argument " + GoQuote(value) + " for \"" + flag_name + "\" flag: " + why;
    return false;
  }
  flag->changed = true;
  return true;
}

bool FlagSet::Set(const std::string& name, const std::string& value, std::string* error) {
  Flag* flag = Find(name);
  if (flag == nullptr) {
    *error = "no such flag -" + name;
    return false;
  }
  return Assign(name, flag, value, error);
}

std::optional<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args,
                                                       std::string* error) {
  std::vector<std::string> positional;
  positionals_before_dash_ = static_cast<size_t>(-1);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      positionals_before_dash_ = positional.size();
      positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg[1] == '-') {
      std::string body = arg.substr(2);
      size_t eq = body.find('=');
      std::string name = body.substr(0, eq);
      if (name.empty() || name[0] == '-' || name[0] == '=') {
        *error = "bad flag syntax: " + arg;
        return std::nullopt;
      }
      Flag* flag = Find(name);
      if (flag == nullptr) {
        *error = "unknown flag: --" + name;
        return std::nullopt;
      }
      std::string value;
      if (eq != std::string::npos) {
        value = body.substr(eq + 1);
      } else if (flag->type == Type::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        *error = "flag needs an argument: --" + name;
        return std::nullopt;
      }
      if (!Assign(name, flag, value, error)) return std::nullopt;
      continue;
    }
    // One or more shorthands: -i, -w json, -wjson, -w=json.
    std::string shorts = arg.substr(1);
    while (!shorts.empty()) {
      char c = shorts[0];
      std::string name;
      Flag* flag = nullptr;
      for (auto& [n, f] : flags_) {
        if (f.shorthand == c) name = n, flag = &f;
      }
      if (flag == nullptr) {
        *error = std::string("unknown shorthand flag: '") + c + "' in -" + shorts;
        return std::nullopt;
      }
      std::string value;
      if (shorts.size() > 2 && shorts[1] == '=') {
        value = shorts.substr(2);
        shorts.clear();
      } else if (flag->type == Type::kBool) {
        value = "true";
        shorts = shorts.substr(1);
      } else if (shorts.size() > 1) {
        value = shorts.substr(1);
        shorts.clear();
      } else if (i + 1 < args.size()) {
        value = args[++i];
        shorts.clear();
      } else {
        *error = std::string("flag needs an argument: '") + c + "' in -" + shorts;
        return std::nullopt;
      }
      if (!Assign(name, flag, value, error)) return std::nullopt;
    }
  }
  if (positionals_before_dash_ == static_cast<size_t>(-1)) {
    positionals_before_dash_ = positional.size();
  }
  return positional;
}

}  // namespace etcdpp::ctl
