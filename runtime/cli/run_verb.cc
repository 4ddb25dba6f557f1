// run: create + start, then (unless detached) stay in the foreground with the container's
// stdio, forward signals to it, and exit with its status after deleting it.
#include <signal.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "runtime/cli/commands.h"
#include "runtime/common/error.h"
#include "runtime/common/phase_timer.h"
#include "runtime/linux/container.h"
#include "runtime/spec/parser.h"

namespace berth::cli {
namespace {

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

}  // namespace

void AddRun(CLI::App& app, const GlobalOptions& g, int& exit_code) {
  auto* cmd = app.add_subcommand("run", "create and start a container");
  auto bundle = std::make_shared<std::string>(".");
  auto id = std::make_shared<std::string>();
  auto detach = std::make_shared<bool>(false);
  cmd->add_option("-b,--bundle", *bundle, "bundle directory");
  cmd->add_flag("-d,--detach", *detach, "return once started; output goes to the console log");
  cmd->add_option("id", *id)->required();
  cmd->callback([&g, &exit_code, bundle, id, detach] {
    container::CreateOptions o;
    PhaseTimer timer("berth-runtime run");
    o.id = *id;
    o.state_root = g.root;
    o.spec = spec::LoadBundle(*bundle);
    timer.Mark("load");
    char real[PATH_MAX];
    o.bundle = ::realpath(bundle->c_str(), real) ? real : *bundle;
    o.inherit_stdio = !*detach;
    sigset_t forwarded;
    sigemptyset(&forwarded);
    for (int s : kForwardedSignals) sigaddset(&forwarded, s);
    if (!*detach) pthread_sigmask(SIG_BLOCK, &forwarded, nullptr);
    container::CreateContainer(o);
    timer.Mark("create");
    try {
      container::StartContainer(g.root, *id);
      timer.Mark("start");
    } catch (...) {
      container::DeleteContainer(g.root, *id, true);
      throw;
    }
    if (*detach) {
      exit_code = 0;
      return;
    }
    std::thread([forwarded, root = g.root, cid = *id] {
      for (;;) {
        int sig = 0;
        if (sigwait(&forwarded, &sig) != 0) continue;
        try {
          container::KillContainer(root, cid, sig, false);
        } catch (...) {
        }
      }
    }).detach();
    auto info = container::WaitContainer(g.root, *id);
    timer.Mark("wait");
    container::DeleteContainer(g.root, *id, true);
    timer.Mark("delete");
    if (info.exit_code) {
      exit_code = *info.exit_code;
    } else if (info.exit_signal) {
      exit_code = 128 + *info.exit_signal;
    } else {
      exit_code = 255;
    }
  });
}

}  // namespace berth::cli
