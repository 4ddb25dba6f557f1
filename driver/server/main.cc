// berthd: the REST backend for Nova's instance lifecycle.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "driver/server/config.h"
#include "driver/server/server.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/linux/spawner.h"

namespace {

int g_signal_pipe[2] = {-1, -1};

// Only async-signal-safe work here: the main thread does the shutdown.
void OnSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  int saved = errno;
  (void)!::write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("berthd");
  // One event per line, key=value fields in the message, so journald and grep both work.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l pid=%P tid=%t %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berthd: the Berth REST backend for OpenStack Nova"};
  std::string config_path = "/etc/berth/berthd.conf";
  bool config_given = false;
  app.add_option_function<std::string>(
         "--config",
         [&](const std::string& p) {
           config_path = p;
           config_given = true;
         },
         "INI configuration file")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  berth::server::Config config;
  try {
    if (config_given || berth::PathExists(config_path)) {
      config = berth::server::LoadConfig(config_path);
    }
  } catch (const berth::Error& e) {
    std::fprintf(stderr, "berthd: %s\n", e.what());
    return 2;
  }
  // Before logging starts its threads: the spawner must be forked while we have none.
  std::unique_ptr<berth::container::Spawner> spawner;
  std::string spawner_error;
  if (config.spawner) {
    try {
      spawner = berth::container::Spawner::Start(config.shells);
    } catch (const berth::Error& e) {
      spawner_error = e.what();
    }
  }
  SetUpLogging(config.log_level);
  if (spawner) {
    spdlog::info("container spawner pid={}", spawner->pid());
  } else if (!spawner_error.empty()) {
    spdlog::warn("no container spawner ({}); berthd creates containers itself", spawner_error);
  }
  for (const auto& w : config.warnings) spdlog::warn("config {}: {}", config_path, w);

  if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    spdlog::critical("pipe2: {}", std::strerror(errno));
    return 1;
  }
  // Handlers, not a blocked mask: a mask would be inherited by the containers' processes.
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  berth::server::ApiServer server(config, spawner.get());
  try {
    server.init();
    server.serve();
  } catch (const std::exception& e) {
    spdlog::critical("start-up failed: {}", e.what());
    return 1;
  }
  std::printf("berthd listening on %s:%u\n", config.listen.c_str(), server.port());
  std::fflush(stdout);

  unsigned char sig = 0;
  while (::read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
  }
  spdlog::info("signal {}: shutting down; instances keep running", static_cast<int>(sig));
  server.shutdown();
  spdlog::info("stopped");
  return 0;
}
