#include <cstdio>

#include "runtime/cli/commands.h"
#include "runtime/common/error.h"

int main(int argc, char** argv) {
  berth::cli::GlobalOptions g;
  int exit_code = 0;
  CLI::App app{"berth-runtime: run OCI bundles as Berth containers"};
  app.require_subcommand(1);
  app.add_option("--root", g.root, "state directory")->capture_default_str();
  // runc/crun global flags that callers pass; accepted and ignored.
  bool ignored_flag = false;
  std::string ignored_value;
  app.add_flag("--systemd-cgroup", ignored_flag, "accepted for compatibility; ignored");
  app.add_option("--log,--log-format", ignored_value, "accepted for compatibility; ignored");
  berth::cli::AddCreate(app, g, exit_code);
  berth::cli::AddStart(app, g, exit_code);
  berth::cli::AddRun(app, g, exit_code);
  berth::cli::AddState(app, g, exit_code);
  berth::cli::AddKill(app, g, exit_code);
  berth::cli::AddDelete(app, g, exit_code);
  berth::cli::AddExec(app, g, exit_code);
  berth::cli::AddList(app, g, exit_code);
  berth::cli::AddPs(app, g, exit_code);
  berth::cli::AddPauseResume(app, g, exit_code);
  berth::cli::AddStats(app, g, exit_code);
  berth::cli::AddSpec(app, g, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const berth::Error& e) {
    std::fprintf(stderr, "berth-runtime: %s\n", e.what());
    return e.kind() == berth::ErrorKind::kNotFound ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "berth-runtime: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
