// The server's log sinks and line format, set up once in main before any
// other thread starts; spdlog's default logger is thread-safe after that.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string>

#include "base/status.h"

namespace etcdpp::cmd {

struct LogOptions {
  // etcd's --log-outputs: comma-separated; "stderr" (or etcd's "default"),
  // "stdout", or a file path, appended to and created if missing.
  std::string outputs = "stderr";
  std::string format = "json";  // "json" or "text"
  std::string level = "info";   // debug, info, warn, error
};

// Replaces spdlog's default logger. Fails, logging nothing, when an output
// cannot be opened.
Status SetUpLogging(const LogOptions& options);

// One JSON object per line with the field names and order of etcd's zap
// logger, so tools that read etcd's logs read ours:
//   {"level":"info","ts":"2026-12-03T07:05:36.425Z","caller":"server/x.cc:12","msg":"..."}
// ts is UTC with milliseconds. caller appears only when the call site passed
// its source location (the SPDLOG_LOGGER_* macros do; spdlog::info() does
// not). The message is escaped, so every line parses as JSON.
class JsonLineFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace etcdpp::cmd
