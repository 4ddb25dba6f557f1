// berth-runtime: the OCI-runtime-shaped CLI. Each verb lives in its own file and calls one
// function of runtime/linux/container.h.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace berth::cli {

struct GlobalOptions {
  std::string root = "/run/berth-runtime";
};

// Each returns the exit status through `exit_code` when the verb ran.
void AddCreate(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddStart(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddRun(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddState(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddKill(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddDelete(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddExec(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddList(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddPs(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddPauseResume(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddStats(CLI::App& app, const GlobalOptions& g, int& exit_code);
void AddSpec(CLI::App& app, const GlobalOptions& g, int& exit_code);

// A wait status as a shell reports it: the exit code, or 128 + signal.
int ShellStatus(int wait_status);

}  // namespace berth::cli
