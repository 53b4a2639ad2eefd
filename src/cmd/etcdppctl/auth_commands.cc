// auth enable|disable|status, user *, role *: etcdctl 3.4's auth commands,
// with its output in the simple and json formats.
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <optional>

#include "cmd/etcdppctl/commands.h"
#include "cmd/etcdppctl/json_writer.h"

namespace etcdpp::ctl {
namespace {

using AuthStub = etcdserverpb::Auth::Stub;

constexpr std::string_view kOpenEnd("\0", 1);

// etcd's JSON of a response header (zero fields left out, as Go's omitempty).
void JsonAuthHeader(JsonWriter& w, const etcdserverpb::ResponseHeader& h) {
  w.Key("header");
  w.BeginObject();
  if (h.cluster_id() != 0) w.Key("cluster_id"), w.Uint(h.cluster_id());
  if (h.member_id() != 0) w.Key("member_id"), w.Uint(h.member_id());
  if (h.revision() != 0) w.Key("revision"), w.Int(h.revision());
  if (h.raft_term() != 0) w.Key("raft_term"), w.Uint(h.raft_term());
  w.EndObject();
}

// Prints a response in the chosen format: `simple` writes etcdctl's text,
// `json` adds the fields after the header. Formats etcdctl has no auth
// output for are refused as unsupported.
template <typename Response, typename Simple, typename Json>
int Print(Invocation& inv, const Response& resp, Simple simple, Json json) {
  const OutputFormat format = inv.printer_options().format;
  if (format == OutputFormat::kSimple) {
    simple(inv.io().out);
    return kExitSuccess;
  }
  if (format == OutputFormat::kJson) {
    JsonWriter w;
    w.BeginObject();
    if (resp.has_header()) JsonAuthHeader(w, resp.header());
    json(w);
    w.EndObject();
    inv.io().out << w.str() << "\n";
    return kExitSuccess;
  }
  return inv.Unsupported();
}

template <typename Response>
int PrintLine(Invocation& inv, const Response& resp, const std::string& line) {
  return Print(
      inv, resp, [&](std::ostream& out) { out << line << "\n"; }, [](JsonWriter&) {});
}

// A refusal with etcdctl's usage error unless exactly `count` arguments.
std::optional<int> ExpectArgs(Invocation& inv, size_t count, const char* usage_error) {
  if (inv.args().size() == count) return std::nullopt;
  return inv.Fail(CtlStatus::Fail(kExitBadArgs, usage_error));
}

template <typename Request, typename Response>
using AuthMethod = grpc::Status (AuthStub::*)(grpc::ClientContext*, const Request&, Response*);

// One Auth RPC through the client (endpoints, token, retries).
template <typename Request, typename Response>
grpc::Status CallAuth(Invocation& inv, AuthMethod<Request, Response> method, const Request& req,
                      Response* resp) {
  return inv.client().AuthCall(
      [&](AuthStub& stub, grpc::ClientContext* ctx) { return (stub.*method)(ctx, req, resp); });
}

// Most user and role commands: one RPC, and one line on success.
template <typename Request, typename Response>
int CallAndPrintLine(Invocation& inv, AuthMethod<Request, Response> method, const Request& req,
                     const std::string& line) {
  Response resp;
  grpc::Status rpc = CallAuth(inv, method, req, &resp);
  if (!rpc.ok()) return inv.RpcFailure(rpc);
  return PrintLine(inv, resp, line);
}

// A JSON array of names under `key`, left out when empty (Go's omitempty).
void JsonNames(JsonWriter& w, const char* key,
               const google::protobuf::RepeatedPtrField<std::string>& names) {
  if (names.empty()) return;
  w.Key(key);
  w.BeginArray();
  for (const std::string& name : names) w.String(name);
  w.EndArray();
}

// `user list` and `role list`: a name per line, or the JSON array.
template <typename Response>
int PrintNames(Invocation& inv, const Response& resp, const char* key,
               const google::protobuf::RepeatedPtrField<std::string>& names) {
  return Print(
      inv, resp,
      [&](std::ostream& out) {
        for (const std::string& name : names) out << name << "\n";
      },
      [&](JsonWriter& w) { JsonNames(w, key, names); });
}

// Reads a password without echo when stdin is a terminal, after `prompt`.
std::string ReadSecret(Invocation& inv, const std::string& prompt) {
  inv.io().out << prompt << std::flush;
  termios saved{};
  const bool tty = isatty(STDIN_FILENO) != 0 && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(inv.io().in, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    inv.io().out << "\n";
  }
  return line;
}

// etcdctl's readPasswordInteractive: asked twice, must match.
std::optional<std::string> ReadPasswordTwice(Invocation& inv, const std::string& user, int* rc) {
  std::string first = ReadSecret(inv, "Password of " + user + ": ");
  std::string second = ReadSecret(inv, "Type password of " + user + " again for confirmation: ");
  if (first != second) {
    *rc = inv.Fail(CtlStatus::Fail(kExitBadArgs, "given passwords are different"));
    return std::nullopt;
  }
  return first;
}

// With --interactive=false: the first whitespace-separated word of stdin
// (etcdctl reads it with Scanf("%s")).
std::string ReadPasswordWord(Invocation& inv) {
  std::string word;
  inv.io().in >> word;
  return word;
}

int RpcFailed(Invocation& inv, const grpc::Status& rpc) { return inv.RpcFailure(rpc); }

// ---------------------------------------------------------------------------
// auth

class AuthEnableCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 0, "auth enable command does not accept any arguments"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    // Like etcdctl: a missing root role is created and granted to root,
    // then enabling is tried again.
    for (;;) {
      etcdserverpb::AuthEnableResponse resp;
      grpc::Status rpc =
          CallAuth(inv, &AuthStub::AuthEnable, etcdserverpb::AuthEnableRequest(), &resp);
      if (rpc.ok()) break;
      if (rpc.error_message() != "etcdserver: root user does not have root role") {
        return RpcFailed(inv, rpc);
      }
      etcdserverpb::AuthRoleAddRequest add;
      add.set_name("root");
      etcdserverpb::AuthRoleAddResponse add_resp;
      rpc = CallAuth(inv, &AuthStub::RoleAdd, add, &add_resp);
      if (!rpc.ok()) return RpcFailed(inv, rpc);
      etcdserverpb::AuthUserGrantRoleRequest grant;
      grant.set_user("root");
      grant.set_role("root");
      etcdserverpb::AuthUserGrantRoleResponse grant_resp;
      rpc = CallAuth(inv, &AuthStub::UserGrantRole, grant, &grant_resp);
      if (!rpc.ok()) return RpcFailed(inv, rpc);
    }
    inv.io().out << "Authentication Enabled\n";
    return kExitSuccess;
  }
};

class AuthDisableCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 0, "auth disable command does not accept any arguments"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthDisableResponse resp;
    grpc::Status rpc =
        CallAuth(inv, &AuthStub::AuthDisable, etcdserverpb::AuthDisableRequest(), &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    inv.io().out << "Authentication Disabled\n";
    return kExitSuccess;
  }
};

class AuthStatusCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 0, "auth status command does not accept any arguments"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthStatusResponse resp;
    grpc::Status rpc =
        CallAuth(inv, &AuthStub::AuthStatus, etcdserverpb::AuthStatusRequest(), &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    return Print(
        inv, resp,
        [&](std::ostream& out) {
          out << "Authentication Status: " << (resp.enabled() ? "true" : "false") << "\n"
              << "AuthRevision: " << resp.authrevision() << "\n";
        },
        [&](JsonWriter& w) {
          if (resp.enabled()) w.Key("enabled"), w.Bool(true);
          if (resp.authrevision() != 0) w.Key("authRevision"), w.Uint(resp.authrevision());
        });
  }
};

// ---------------------------------------------------------------------------
// user

class UserAddCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("interactive", 0, &interactive_, true,
               "read the password from a prompt (false: the first word of stdin)");
    f->AddString("new-user-password", 0, &password_flag_, "", "the new user's password");
    f->AddBool("no-password", 0, &no_password_, false,
               "a user without password (for client certificate authentication only)");
  }

  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "user add command requires user name as its argument"))
      return *rc;
    std::string user = inv.args()[0];
    std::string password;
    if (!no_password_) {
      if (!password_flag_.empty()) {
        password = password_flag_;
      } else if (size_t colon = user.find(':'); colon != std::string::npos) {
        password = user.substr(colon + 1);
        user.resize(colon);
        if (user.empty()) {
          return inv.Fail(CtlStatus::Fail(kExitBadArgs, "empty user name is not allowed"));
        }
      } else if (!interactive_) {
        password = ReadPasswordWord(inv);
      } else {
        int rc = kExitSuccess;
        auto typed = ReadPasswordTwice(inv, user, &rc);
        if (!typed) return rc;
        password = *typed;
      }
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserAddRequest req;
    req.set_name(user);
    req.set_password(password);
    req.mutable_options()->set_no_password(no_password_);
    return CallAndPrintLine(inv, &AuthStub::UserAdd, req, "User " + user + " created");
  }

 private:
  bool interactive_ = true;
  std::string password_flag_;
  bool no_password_ = false;
};

void SimpleRoleGet(std::ostream& out, const std::string& role,
                   const etcdserverpb::AuthRoleGetResponse& resp);

class UserGetCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("detail", 0, &detail_, false, "also show the permissions of each role");
  }

  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "user get command requires user name as its argument"))
      return *rc;
    const std::string& name = inv.args()[0];
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserGetRequest req;
    req.set_name(name);
    etcdserverpb::AuthUserGetResponse resp;
    grpc::Status rpc = CallAuth(inv, &AuthStub::UserGet, req, &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    if (detail_) {
      inv.io().out << "User: " << name << "\n";
      for (const std::string& role : resp.roles()) {
        inv.io().out << "\n";
        etcdserverpb::AuthRoleGetRequest role_req;
        role_req.set_role(role);
        etcdserverpb::AuthRoleGetResponse role_resp;
        rpc = CallAuth(inv, &AuthStub::RoleGet, role_req, &role_resp);
        if (!rpc.ok()) return RpcFailed(inv, rpc);
        SimpleRoleGet(inv.io().out, role, role_resp);
      }
      return kExitSuccess;
    }
    return Print(
        inv, resp,
        [&](std::ostream& out) {
          out << "User: " << name << "\nRoles:";
          for (const std::string& role : resp.roles()) out << " " << role;
          out << "\n";
        },
        [&](JsonWriter& w) { JsonNames(w, "roles", resp.roles()); });
  }

 private:
  bool detail_ = false;
};

class UserListCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 0, "user list command requires no arguments")) return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserListResponse resp;
    grpc::Status rpc =
        CallAuth(inv, &AuthStub::UserList, etcdserverpb::AuthUserListRequest(), &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    return PrintNames(inv, resp, "users", resp.users());
  }
};

class UserDeleteCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "user delete command requires user name as its argument"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserDeleteRequest req;
    req.set_name(inv.args()[0]);
    return CallAndPrintLine(inv, &AuthStub::UserDelete, req, "User " + inv.args()[0] + " deleted");
  }
};

class UserPasswdCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override {
    f->AddBool("interactive", 0, &interactive_, true,
               "read the password from a prompt (false: the first word of stdin)");
  }

  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "user passwd command requires user name as its argument"))
      return *rc;
    const std::string& name = inv.args()[0];
    std::string password;
    if (!interactive_) {
      password = ReadPasswordWord(inv);
    } else {
      int rc = kExitSuccess;
      auto typed = ReadPasswordTwice(inv, name, &rc);
      if (!typed) return rc;
      password = *typed;
    }
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserChangePasswordRequest req;
    req.set_name(name);
    req.set_password(password);
    return CallAndPrintLine(inv, &AuthStub::UserChangePassword, req, "Password updated");
  }

 private:
  bool interactive_ = true;
};

class UserGrantRoleCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 2,
                             "user grant command requires user name and role name as its argument"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserGrantRoleRequest req;
    req.set_user(inv.args()[0]);
    req.set_role(inv.args()[1]);
    return CallAndPrintLine(inv, &AuthStub::UserGrantRole, req,
                            "Role " + inv.args()[1] + " is granted to user " + inv.args()[0]);
  }
};

class UserRevokeRoleCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc =
            ExpectArgs(inv, 2, "user revoke-role requires user name and role name as its argument"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthUserRevokeRoleRequest req;
    req.set_name(inv.args()[0]);
    req.set_role(inv.args()[1]);
    return CallAndPrintLine(inv, &AuthStub::UserRevokeRole, req,
                            "Role " + inv.args()[1] + " is revoked from user " + inv.args()[0]);
  }
};

// ---------------------------------------------------------------------------
// role

// clientv3.GetPrefixRangeEnd: the key after every key starting with `prefix`.
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(kOpenEnd);
}

void PrintPermRange(std::ostream& out, const authpb::Permission& p) {
  if (p.range_end() != kOpenEnd) {
    out << "\t[" << p.key() << ", " << p.range_end() << ")";
  } else {
    out << "\t[" << p.key() << ", <open ended>";
  }
  if (!p.key().empty() && PrefixEnd(p.key()) == p.range_end()) out << " (prefix " << p.key() << ")";
  out << "\n";
}

void SimpleRoleGet(std::ostream& out, const std::string& role,
                   const etcdserverpb::AuthRoleGetResponse& resp) {
  out << "Role " << role << "\n";
  auto section = [&](const char* title, authpb::Permission::Type skip) {
    out << title << "\n";
    for (const authpb::Permission& p : resp.perm()) {
      if (p.permtype() == skip) continue;
      if (p.range_end().empty()) {
        out << "\t" << p.key() << "\n";
      } else {
        PrintPermRange(out, p);
      }
    }
  };
  section("KV Read:", authpb::Permission::WRITE);
  section("KV Write:", authpb::Permission::READ);
}

class RoleAddCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "role add command requires role name as its argument"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthRoleAddRequest req;
    req.set_name(inv.args()[0]);
    return CallAndPrintLine(inv, &AuthStub::RoleAdd, req, "Role " + inv.args()[0] + " created");
  }
};

class RoleGetCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "role get command requires role name as its argument"))
      return *rc;
    const std::string& role = inv.args()[0];
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthRoleGetRequest req;
    req.set_role(role);
    etcdserverpb::AuthRoleGetResponse resp;
    grpc::Status rpc = CallAuth(inv, &AuthStub::RoleGet, req, &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    return Print(
        inv, resp, [&](std::ostream& out) { SimpleRoleGet(out, role, resp); },
        [&](JsonWriter& w) {
          if (resp.perm_size() == 0) return;
          w.Key("perm");
          w.BeginArray();
          for (const authpb::Permission& p : resp.perm()) {
            w.BeginObject();
            if (p.permtype() != authpb::Permission::READ) {
              w.Key("permType"), w.Int(p.permtype());
            }
            if (!p.key().empty()) w.Key("key"), w.Bytes(p.key());
            if (!p.range_end().empty()) w.Key("range_end"), w.Bytes(p.range_end());
            w.EndObject();
          }
          w.EndArray();
        });
  }
};

class RoleListCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 0, "role list command requires no arguments")) return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthRoleListResponse resp;
    grpc::Status rpc =
        CallAuth(inv, &AuthStub::RoleList, etcdserverpb::AuthRoleListRequest(), &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    return PrintNames(inv, resp, "roles", resp.roles());
  }
};

class RoleDeleteCommand : public Command {
 public:
  int Run(Invocation& inv) override {
    if (auto rc = ExpectArgs(inv, 1, "role delete command requires role name as its argument"))
      return *rc;
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthRoleDeleteRequest req;
    req.set_role(inv.args()[0]);
    return CallAndPrintLine(inv, &AuthStub::RoleDelete, req, "Role " + inv.args()[0] + " deleted");
  }
};

// etcdctl's permRange / rangeEndFromPermFlags: the key and range end of a
// grant or revoke from its arguments and --prefix / --from-key.
class PermissionRangeFlags {
 public:
  void Add(FlagSet* f, const char* verb) {
    f->AddBool("prefix", 0, &prefix_, false, std::string(verb) + " a prefix permission");
    f->AddBool("from-key", 0, &from_key_, false,
               std::string(verb) +
                   " a permission of keys that are greater than or equal to the given key using "
                   "byte compare");
  }

  // args: <key> [endkey]. On a flag conflict, *error says why.
  std::pair<std::string, std::string> Range(const std::vector<std::string>& args,
                                            std::string* error) const {
    std::string key = args[0];
    if (key.empty()) {
      if (prefix_ && from_key_) {
        *error = "--from-key and --prefix flags are mutually exclusive";
        return {};
      }
      // The empty key cannot be a range start; "\0" with an open end is the
      // whole key space.
      return {std::string(kOpenEnd), prefix_ || from_key_ ? std::string(kOpenEnd) : ""};
    }
    if (args.size() == 1) {
      if (prefix_) {
        if (from_key_) {
          *error = "--from-key and --prefix flags are mutually exclusive";
          return {};
        }
        return {key, PrefixEnd(key)};
      }
      if (from_key_) return {key, std::string(kOpenEnd)};
      return {key, ""};
    }
    if (prefix_) {
      *error = "unexpected endkey argument with --prefix flag";
      return {};
    }
    if (from_key_) {
      *error = "unexpected endkey argument with --from-key flag";
      return {};
    }
    return {key, args[1]};
  }

 private:
  bool prefix_ = false;
  bool from_key_ = false;
};

class RoleGrantPermissionCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { range_.Add(f, "grant"); }

  int Run(Invocation& inv) override {
    const auto& args = inv.args();
    if (args.size() < 3) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs,
                                      "role grant command requires role name, permission type, "
                                      "and key [endkey] as its argument"));
    }
    std::string type = args[1];
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    authpb::Permission::Type perm_type;
    if (!authpb::Permission::Type_Parse(type, &perm_type)) {
      return inv.Fail(CtlStatus::Fail(kExitBadArgs, "invalid permission type: " + args[1]));
    }
    std::string error;
    auto [key, end] = range_.Range({args.begin() + 2, args.end()}, &error);
    if (!error.empty()) return inv.Fail(CtlStatus::Fail(kExitBadArgs, error));
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthRoleGrantPermissionRequest req;
    req.set_name(args[0]);
    req.mutable_perm()->set_permtype(perm_type);
    req.mutable_perm()->set_key(key);
    req.mutable_perm()->set_range_end(end);
    return CallAndPrintLine(inv, &AuthStub::RoleGrantPermission, req,
                            "Role " + args[0] + " updated");
  }

 private:
  PermissionRangeFlags range_;
};

class RoleRevokePermissionCommand : public Command {
 public:
  void AddFlags(FlagSet* f) override { range_.Add(f, "revoke"); }

  int Run(Invocation& inv) override {
    const auto& args = inv.args();
    if (args.size() < 2) {
      return inv.Fail(CtlStatus::Fail(
          kExitBadArgs,
          "role revoke-permission command requires role name and key [endkey] as its argument"));
    }
    std::string error;
    auto [key, end] = range_.Range({args.begin() + 1, args.end()}, &error);
    if (!error.empty()) return inv.Fail(CtlStatus::Fail(kExitBadArgs, error));
    if (auto rc = inv.PrepareClient()) return *rc;
    etcdserverpb::AuthRoleRevokePermissionRequest req;
    req.set_role(args[0]);
    req.set_key(key);
    req.set_range_end(end);
    etcdserverpb::AuthRoleRevokePermissionResponse resp;
    grpc::Status rpc = CallAuth(inv, &AuthStub::RoleRevokePermission, req, &resp);
    if (!rpc.ok()) return RpcFailed(inv, rpc);
    std::string line;
    if (end.empty()) {
      line = "Permission of key " + key + " is revoked from role " + args[0];
    } else if (end != kOpenEnd) {
      line = "Permission of range [" + key + ", " + end + ") is revoked from role " + args[0];
    } else {
      line = "Permission of range [" + key + ", <open ended> is revoked from role " + args[0];
    }
    return PrintLine(inv, resp, line);
  }

 private:
  PermissionRangeFlags range_;
};

}  // namespace

std::vector<CommandSpec> AuthCommandSpecs() {
  return {
      {"auth disable", "", "turn authentication off", "", Make<AuthDisableCommand>},
      {"auth enable", "",
       "turn authentication on (the user root must exist; it gets the root role)", "",
       Make<AuthEnableCommand>},
      {"auth status", "", "show whether authentication is on, and the auth revision", "",
       Make<AuthStatusCommand>},
      {"role add", "<role name>", "create a role", "", Make<RoleAddCommand>},
      {"role delete", "<role name>", "remove a role (and take it from every user)", "",
       Make<RoleDeleteCommand>},
      {"role get", "<role name>", "show the keys a role may read and write", "",
       Make<RoleGetCommand>},
      {"role grant-permission", "<role name> <permission type> <key> [endkey]",
       "let a role READ, WRITE or READWRITE a key, a range or a prefix", "",
       Make<RoleGrantPermissionCommand>},
      {"role list", "", "list every role", "", Make<RoleListCommand>},
      {"role revoke-permission", "<role name> <key> [endkey]",
       "take a key, range or prefix away from a role", "", Make<RoleRevokePermissionCommand>},
      {"user add", "<user name or user:password>", "create a user", "", Make<UserAddCommand>},
      {"user delete", "<user name>", "remove a user", "", Make<UserDeleteCommand>},
      {"user get", "<user name>", "show a user's roles", "", Make<UserGetCommand>},
      {"user grant-role", "<user name> <role name>", "give a user a role", "",
       Make<UserGrantRoleCommand>},
      {"user list", "", "list every user", "", Make<UserListCommand>},
      {"user passwd", "<user name>", "change a user's password", "", Make<UserPasswdCommand>},
      {"user revoke-role", "<user name> <role name>", "take a role away from a user", "",
       Make<UserRevokeRoleCommand>},
  };
}

}  // namespace etcdpp::ctl
