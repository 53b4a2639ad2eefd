#include "cmd/etcdpp/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <string_view>
#include <vector>

namespace etcdpp::cmd {
namespace {

// zap's level names; spdlog's critical is what etcd logs at fatal before exiting.
std::string_view ZapLevel(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "fatal";
    default:
      return "info";
  }
}

void AppendJsonString(std::string_view text, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  dest.push_back('"');
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (byte < 0x20) {
          const char escaped[] = {'\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 0xf]};
          dest.append(std::string_view(escaped, sizeof(escaped)));
        } else {
          dest.push_back(c);  // UTF-8 passes through unchanged.
        }
    }
  }
  dest.push_back('"');
}

// "dir/file.cc" from a full path: the last two components, as zap's short
// caller names a Go file by package and file.
std::string_view ShortCaller(std::string_view path) {
  const size_t last = path.rfind('/');
  if (last == std::string_view::npos || last == 0) return path;
  const size_t before = path.rfind('/', last - 1);
  return before == std::string_view::npos ? path : path.substr(before + 1);
}

}  // namespace

void JsonLineFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto since_epoch = msg.time.time_since_epoch();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(msg.time);
  const long millis = static_cast<long>(duration_cast<milliseconds>(since_epoch).count() % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char ts[32];
  const size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &utc);

  dest.append(std::string_view(R"({"level":")"));
  dest.append(ZapLevel(msg.level));
  dest.append(std::string_view(R"(","ts":")"));
  dest.append(std::string_view(ts, n));
  const char fraction[] = {'.',
                           static_cast<char>('0' + millis / 100),
                           static_cast<char>('0' + millis / 10 % 10),
                           static_cast<char>('0' + millis % 10),
                           'Z',
                           '"'};
  dest.append(std::string_view(fraction, sizeof(fraction)));
  if (!msg.source.empty() && msg.source.filename != nullptr) {
    dest.append(std::string_view(R"(,"caller":)"));
    AppendJsonString(
        std::string(ShortCaller(msg.source.filename)) + ":" + std::to_string(msg.source.line),
        dest);
  }
  dest.append(std::string_view(R"(,"msg":)"));
  AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  dest.append(std::string_view("}\n"));
}

std::unique_ptr<spdlog::formatter> JsonLineFormatter::clone() const {
  return std::make_unique<JsonLineFormatter>();
}

Status SetUpLogging(const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks;
  std::string_view rest = options.outputs;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string output(rest.substr(0, comma));
    if (output.empty()) {
      return Status::InvalidArgument("--log-outputs has an empty entry: \"" + options.outputs +
                                     "\"");
    }
    if (output == "stderr" || output == "default") {
      sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else if (output == "stdout") {
      sinks.push_back(std::make_shared<spdlog::sinks::stdout_sink_mt>());
    } else {
      try {
        sinks.push_back(
            std::make_shared<spdlog::sinks::basic_file_sink_mt>(output, /*truncate=*/false));
      } catch (const spdlog::spdlog_ex& e) {
        return Status::InvalidArgument("cannot open log output " + output + ": " + e.what());
      }
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }

  auto logger = std::make_shared<spdlog::logger>("etcdpp", sinks.begin(), sinks.end());
  if (options.format == "json") {
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %L %v");
  }
  logger->set_level(spdlog::level::from_str(options.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(spdlog::level::from_str(options.level));
  return Status::OK();
}

}  // namespace etcdpp::cmd
