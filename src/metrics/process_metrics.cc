#include "metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace etcdpp::metrics {
namespace {

// The fields of /proc/self/stat after the command name (which may hold
// spaces and parentheses, hence the split at the last ')'): index 0 is the
// state, field 3 of proc(5); so proc(5)'s field n is at index n - 3.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const size_t paren = line.rfind(')');
  std::vector<std::string> fields;
  if (paren == std::string::npos) return fields;
  std::istringstream rest(line.substr(paren + 1));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double StatField(int proc5_number) {
  const auto fields = StatFields();
  const size_t i = static_cast<size_t>(proc5_number - 3);
  return i < fields.size() ? std::stod(fields[i]) : 0;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double btime = 0;
      in >> btime;
      return btime;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor reading the directory
}

}  // namespace

void RegisterProcessMetrics(Registry& registry) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  registry.AddCounterFunc(
      "process_cpu_seconds_total", "CPU time (user plus system) this process has used, in seconds.",
      [ticks] {
        const auto f = StatFields();
        // utime and stime: proc(5) fields 14 and 15.
        return f.size() > 12 ? (std::stod(f[11]) + std::stod(f[12])) / ticks : 0;
      });
  registry.AddGaugeFunc("process_resident_memory_bytes",
                        "Bytes of memory this process holds in RAM.",
                        [page] { return StatField(24) * page; });
  registry.AddGaugeFunc("process_virtual_memory_bytes",
                        "Bytes of address space this process has mapped.",
                        [] { return StatField(23); });
  registry.AddGaugeFunc("process_open_fds", "File descriptors this process has open.", OpenFds);
  registry.AddGaugeFunc("process_max_fds", "The limit on open file descriptors (RLIMIT_NOFILE).",
                        [] {
                          rlimit limit{};
                          getrlimit(RLIMIT_NOFILE, &limit);
                          return static_cast<double>(limit.rlim_cur);
                        });
  // Fixed for the process's life: computed once.
  const double start = BootTimeSeconds() + StatField(22) / ticks;
  registry.AddGaugeFunc("process_start_time_seconds",
                        "When this process started, in seconds since the Unix epoch.",
                        [start] { return start; });
}

}  // namespace etcdpp::metrics
