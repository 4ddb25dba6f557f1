// exec, list, ps, spec.
#include <unistd.h>

#include <cstdio>

#include "runtime/cli/commands.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/linux/container.h"
#include "runtime/spec/parser.h"

namespace berth::cli {

void AddExec(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("exec", "run a command inside a running container");
  auto id = std::make_shared<std::string>();
  auto env = std::make_shared<std::vector<std::string>>();
  auto cwd = std::make_shared<std::string>();
  auto user = std::make_shared<std::string>();
  auto command = std::make_shared<std::vector<std::string>>();
  cmd->add_option("-e,--env", *env, "KEY=VALUE added to the environment");
  cmd->add_option("--cwd", *cwd, "working directory inside the container");
  cmd->add_option("-u,--user", *user, "UID[:GID]");
  cmd->add_option("id", *id)->required();
  cmd->add_option("command", *command, "command and arguments")->required();
  cmd->positionals_at_end();
  cmd->callback([&g, &exit_code, id, env, cwd, user, command] {
    container::ExecOptions o;
    o.args = *command;
    o.env = *env;
    o.cwd = *cwd;
    if (!user->empty()) {
      auto colon = user->find(':');
      o.uid = static_cast<uint32_t>(std::stoul(user->substr(0, colon)));
      if (colon != std::string::npos)
        o.gid = static_cast<uint32_t>(std::stoul(user->substr(colon + 1)));
    }
    exit_code = ShellStatus(container::ExecInContainer(g.root, *id, o));
  });
}

void AddList(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("list", "list containers");
  auto format = std::make_shared<std::string>("table");
  cmd->add_option("-f,--format", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
  cmd->callback([&g, &exit_code, format] {
    auto ids = container::ListContainers(g.root);
    if (*format == "json") {
      std::string out = "[";
      for (size_t i = 0; i < ids.size(); ++i) {
        auto info = container::QueryContainer(g.root, ids[i]);
        auto doc = container::OciStateJson(info);
        out += (i ? "," : "") + doc;
      }
      std::printf("%s]\n", out.c_str());
    } else {
      std::printf("%-24s %-8s %-8s %-32s %s\n", "ID", "PID", "STATUS", "CREATED", "BUNDLE");
      for (const auto& cid : ids) {
        try {
          auto info = container::QueryContainer(g.root, cid);
          int pid = info.status == container::Status::kStopped ? 0 : info.record.init_pid;
          std::printf("%-24s %-8d %-8s %-32s %s\n", cid.c_str(), pid,
                      container::StatusName(info.status), info.record.created.c_str(),
                      info.record.bundle.c_str());
        } catch (const Error& e) {
          std::printf("%-24s %-8s %-8s %s\n", cid.c_str(), "-", "broken", e.what());
        }
      }
    }
    exit_code = 0;
  });
}

void AddPs(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("ps", "list the host pids of a container's processes");
  auto id = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  cmd->add_option("-f,--format", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
  cmd->add_option("id", *id)->required();
  cmd->callback([&g, &exit_code, id, format] {
    auto pids = container::ContainerPids(g.root, *id);
    if (*format == "json") {
      std::string out = "[";
      for (size_t i = 0; i < pids.size(); ++i) out += (i ? "," : "") + std::to_string(pids[i]);
      std::printf("%s]\n", out.c_str());
    } else {
      std::printf("%-8s %s\n", "PID", "CMD");
      for (pid_t pid : pids) {
        std::string cmdline;
        try {
          cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
        } catch (const Error&) {
        }
        for (char& c : cmdline) {
          if (c == '\0') c = ' ';
        }
        std::printf("%-8d %s\n", pid, cmdline.c_str());
      }
    }
    exit_code = 0;
  });
}

void AddStats(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("stats", "print a container's resource usage as JSON");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id)->required();
  cmd->callback([&g, &exit_code, id] {
    std::fputs(container::StatsJson(container::ContainerStats(g.root, *id)).c_str(), stdout);
    exit_code = 0;
  });
}

void AddSpec(CLI::App& app, const GlobalOptions&, int& exit_code) {
  auto* cmd = app.add_subcommand("spec", "write a default config.json into the bundle");
  auto bundle = std::make_shared<std::string>(".");
  cmd->add_option("-b,--bundle", *bundle, "bundle directory");
  cmd->callback([&exit_code, bundle] {
    std::string path = JoinPath(*bundle, "config.json");
    if (PathExists(path)) {
      throw Error(ErrorKind::kAlreadyExists, path + " already exists");
    }
    WriteFileAtomic(path, spec::SerializeSpecIndented(spec::DefaultSpec()));
    exit_code = 0;
  });
}

}  // namespace berth::cli
