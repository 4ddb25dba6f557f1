// create, start, state, kill, delete, pause, resume: one library call each.
#include <cstdio>

#include "runtime/cli/commands.h"
#include "runtime/common/signals.h"
#include "runtime/linux/container.h"
#include "runtime/spec/parser.h"

namespace berth::cli {

void AddCreate(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("create", "create a container from a bundle (not started)");
  auto bundle = std::make_shared<std::string>(".");
  auto id = std::make_shared<std::string>();
  auto pid_file = std::make_shared<std::string>();
  auto console_max = std::make_shared<unsigned long>(1u << 20);
  cmd->add_option("-b,--bundle", *bundle, "bundle directory (config.json and rootfs)");
  cmd->add_option("--pid-file", *pid_file, "write the init's pid here");
  cmd->add_option("--console-max", *console_max, "console log bound in bytes");
  auto console_socket = std::make_shared<std::string>();
  cmd->add_option("--console-socket", *console_socket,
                  "unix socket that receives the pty master (process.terminal)");
  cmd->add_option("id", *id, "container id")->required();
  cmd->callback([&g, &exit_code, bundle, id, pid_file, console_max, console_socket] {
    container::CreateOptions o;
    o.id = *id;
    o.state_root = g.root;
    o.bundle = *bundle;
    o.spec = spec::LoadBundle(*bundle);
    char real[4096];
    if (::realpath(bundle->c_str(), real)) o.bundle = real;
    o.console_max = *console_max;
    o.console_socket = *console_socket;
    auto record = container::CreateContainer(o);
    if (!pid_file->empty()) {
      FILE* f = std::fopen(pid_file->c_str(), "w");
      if (f) {
        std::fprintf(f, "%d", record.init_pid);
        std::fclose(f);
      }
    }
    exit_code = 0;
  });
}

void AddStart(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("start", "start a created container");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id)->required();
  cmd->callback([&g, &exit_code, id] {
    container::StartContainer(g.root, *id);
    exit_code = 0;
  });
}

void AddState(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("state", "print the OCI state of a container");
  auto id = std::make_shared<std::string>();
  cmd->add_option("id", *id)->required();
  cmd->callback([&g, &exit_code, id] {
    std::fputs(container::OciStateJson(container::QueryContainer(g.root, *id)).c_str(), stdout);
    exit_code = 0;
  });
}

void AddKill(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("kill", "send a signal to a container");
  auto id = std::make_shared<std::string>();
  auto sig = std::make_shared<std::string>("SIGTERM");
  auto all = std::make_shared<bool>(false);
  cmd->add_flag("-a,--all", *all, "signal every process in the container");
  cmd->add_option("id", *id)->required();
  cmd->add_option("signal", *sig, "signal name or number")->capture_default_str();
  cmd->callback([&g, &exit_code, id, sig, all] {
    container::KillContainer(g.root, *id, berth::ParseSignal(*sig), *all);
    exit_code = 0;
  });
}

void AddDelete(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("delete", "delete a container and everything it holds");
  auto id = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  cmd->add_flag("-f,--force", *force, "kill a running container first");
  cmd->add_option("id", *id)->required();
  cmd->callback([&g, &exit_code, id, force] {
    container::DeleteContainer(g.root, *id, *force);
    exit_code = 0;
  });
}

void AddPauseResume(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto id = std::make_shared<std::string>();
  auto* pause = app.add_subcommand("pause", "freeze every process of a container");
  pause->add_option("id", *id)->required();
  pause->callback([&g, &exit_code, id] {
    container::PauseContainer(g.root, *id);
    exit_code = 0;
  });
  auto* resume = app.add_subcommand("resume", "thaw a paused container");
  resume->add_option("id", *id)->required();
  resume->callback([&g, &exit_code, id] {
    container::ResumeContainer(g.root, *id);
    exit_code = 0;
  });
}

}  // namespace berth::cli
