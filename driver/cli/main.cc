// berth: the CLI for berthd's REST API, with Docker's verbs.
//   berth [--url URL] [--token T | --token-file F] [--config F] [--json] COMMAND ...
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "driver/cli/client.h"

namespace {

using berth::cli::ApiError;
using berth::cli::Client;

std::string Env(const char* name, const std::string& def = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  if (d.HasParseError()) throw std::runtime_error("berthd sent invalid JSON");
  return d;
}

void PrintPretty(const std::string& json) {
  if (json.empty()) return;
  rapidjson::Document d = Parse(json);
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  std::printf("%s\n", buf.GetString());
}

std::string S(const rapidjson::Value& v, const char* key) {
  if (v.IsObject() && v.HasMember(key) && v[key].IsString()) return v[key].GetString();
  if (v.IsObject() && v.HasMember(key) && v[key].IsInt64())
    return std::to_string(v[key].GetInt64());
  return "-";
}

std::string JsonString(const std::string& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buf.GetString();
}

std::string JsonArray(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + JsonString(v[i]);
  return out + "]";
}

// KEY=value pairs (--metadata) as a JSON object.
std::string JsonObject(const std::vector<std::string>& pairs, const char* what) {
  std::string out = "{";
  for (size_t i = 0; i < pairs.size(); ++i) {
    size_t eq = pairs[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::runtime_error(std::string(what) + ": want KEY=value, got \"" + pairs[i] + "\"");
    }
    out += (i ? ", " : "") + JsonString(pairs[i].substr(0, eq)) + ": " +
           JsonString(pairs[i].substr(eq + 1));
  }
  return out + "}";
}

// Docker's `ps`: live instances (running, paused, suspended) unless `all`.
void PrintInstances(const std::string& json, bool quiet, bool all) {
  auto d = Parse(json);
  if (!quiet) {
    std::printf("%-36s  %-24s  %-9s  %-8s  %5s  %6s  %s\n", "UUID", "NAME", "STATE", "PID", "VCPUS",
                "MEM_MB", "IMAGE");
  }
  for (const auto& i : d["instances"].GetArray()) {
    std::string state = S(i, "power_state_name");
    if (!all && state != "RUNNING" && state != "PAUSED" && state != "SUSPENDED") continue;
    if (quiet) {
      std::printf("%s\n", S(i, "uuid").c_str());
      continue;
    }
    std::printf("%-36s  %-24s  %-9s  %-8s  %5s  %6s  %.19s\n", S(i, "uuid").c_str(),
                S(i, "name").c_str(), S(i, "power_state_name").c_str(), S(i, "pid").c_str(),
                S(i["flavor"], "vcpus").c_str(), S(i["flavor"], "memory_mb").c_str(),
                S(i, "image").c_str());
  }
}

void PrintImages(const std::string& json, bool quiet) {
  auto d = Parse(json);
  if (!quiet) std::printf("%-19s  %-24s  %6s  %12s\n", "ID", "NAMES", "LAYERS", "SIZE");
  for (const auto& i : d["images"].GetArray()) {
    if (quiet) {
      std::printf("%s\n", S(i, "id").c_str());
      continue;
    }
    std::string names;
    for (const auto& n : i["names"].GetArray())
      names += (names.empty() ? "" : ",") + std::string(n.GetString());
    std::printf("%-19.19s  %-24s  %6s  %12s\n", S(i, "id").c_str(),
                names.empty() ? "-" : names.c_str(), S(i, "layer_count").c_str(),
                std::to_string(i["size"].GetUint64()).c_str());
  }
}

// Everything the commands read; CLI11 binds options to these fields.
struct Args {
  bool json = false;
  bool quiet = false;
  bool all = false;
  bool follow = false;
  bool hard = false;
  bool force = false;
  bool by_path = false;
  std::string image, name, uuid, format = "auto", path, output;
  std::vector<std::string> ids;
  std::vector<std::string> command, env, metadata;
  int64_t memory_mb = 512, vcpus = 1, root_gb = 0, timeout = -1, lines = 100;
};

std::string InstancePath(const Args& a, const std::string& rest = "") {
  return "/v1/instances/" + a.uuid + rest;
}

std::string PostAction(Client& c, const Args& a, const std::string& body) {
  return c.PostJson(InstancePath(a, "/action"), body);
}

void PrintState(const Args& a, const std::string& out) {
  a.json ? PrintPretty(out) : (void)std::printf("%s\n", S(Parse(out), "power_state_name").c_str());
}

// `berth logs -f`: polls with the cursor until the instance stops (docs/api.md, console).
void FollowLogs(Client& c, const Args& a) {
  std::string q = InstancePath(a, "/console?follow=true&lines=" + std::to_string(a.lines));
  for (;;) {
    auto d = Parse(c.Get(q));
    std::fputs(S(d, "output").c_str(), stdout);
    std::fflush(stdout);
    if (d.HasMember("lost") && d["lost"].IsBool() && d["lost"].GetBool()) {
      std::fprintf(stderr, "berth: some output was dropped by the console log's size bound\n");
    }
    if (!d["running"].GetBool()) return;
    q = InstancePath(a, "/console?follow=true&wait=30&since=" + S(d, "cursor"));
  }
}

int exec_status = 0;

using Action = std::function<void(Client&, Args&)>;

struct Command {
  const char* name;
  const char* help;
  std::function<void(CLI::App*, Args&)> options;  // may be empty
  Action run;
};

void UuidArg(CLI::App* sc, Args& a) { sc->add_option("UUID", a.uuid, "instance uuid")->required(); }

std::vector<Command> Commands() {
  std::vector<Command> cmds = {
      {"host",
       "host resources and versions",
       {},
       [](Client& c, Args&) { PrintPretty(c.Get("/v1/host")); }},
      {"ps", "list live instances (-a: all)",
       [](CLI::App* sc, Args& a) {
         sc->add_flag("-q,--quiet", a.quiet, "uuids only");
         sc->add_flag("-a,--all", a.all, "also stopped and crashed instances");
       },
       [](Client& c, Args& a) {
         std::string out = c.Get("/v1/instances");
         a.json ? PrintPretty(out) : PrintInstances(out, a.quiet, a.all);
       }},
      {"run", "spawn an instance from an image: run [OPTIONS] IMAGE [CMD...]",
       [](CLI::App* sc, Args& a) {
         sc->add_option("IMAGE", a.image, "image id or name")->required();
         sc->add_option("CMD", a.command, "command (replaces the image's Cmd)");
         sc->add_option("--name", a.name, "name (default: generated adjective_noun)");
         sc->add_option("--uuid", a.uuid, "uuid (default: generated)");
         sc->add_option("--memory-mb", a.memory_mb, "memory limit")->capture_default_str();
         sc->add_option("--vcpus", a.vcpus, "cpus")->capture_default_str();
         sc->add_option("--root-gb", a.root_gb, "disk (flavor root_gb)")->capture_default_str();
         sc->add_option("-e,--env", a.env, "KEY=value for the process (repeatable)")
             ->allow_extra_args(false);
         sc->add_option("--metadata", a.metadata, "KEY=value instance metadata (repeatable)")
             ->allow_extra_args(false);
         sc->positionals_at_end();
       },
       [](Client& c, Args& a) {
         std::string body = "{\"image\": " + JsonString(a.image) +
                            ", \"flavor\": {\"vcpus\": " + std::to_string(a.vcpus) +
                            ", \"memory_mb\": " + std::to_string(a.memory_mb) +
                            ", \"root_gb\": " + std::to_string(a.root_gb) + "}";
         if (!a.name.empty()) body += ", \"name\": " + JsonString(a.name);
         if (!a.uuid.empty()) body += ", \"uuid\": " + JsonString(a.uuid);
         if (!a.command.empty()) body += ", \"command\": " + JsonArray(a.command);
         if (!a.env.empty()) body += ", \"env\": " + JsonArray(a.env);
         if (!a.metadata.empty()) body += ", \"metadata\": " + JsonObject(a.metadata, "--metadata");
         std::string out = c.PostJson("/v1/instances", body + "}");
         a.json ? PrintPretty(out) : (void)std::printf("%s\n", S(Parse(out), "uuid").c_str());
       }},
      {"inspect", "show an instance (by uuid) or an image (by id or name)",
       [](CLI::App* sc, Args& a) {
         sc->add_option("ID", a.uuid, "uuid, image id or name")->required();
       },
       [](Client& c, Args& a) {
         try {
           return PrintPretty(c.Get("/v1/instances/" + a.uuid));
         } catch (const ApiError& e) {
           if (e.status != 404) throw;
         }
         PrintPretty(c.Get("/v1/images/" + a.uuid));
       }},
      {"logs", "console log: the last lines, or -f to follow until the instance stops",
       [](CLI::App* sc, Args& a) {
         UuidArg(sc, a);
         sc->add_option("-n,--lines", a.lines, "lines")->capture_default_str();
         sc->add_flag("-f,--follow", a.follow, "follow the output until the instance stops");
       },
       [](Client& c, Args& a) {
         if (a.follow) return FollowLogs(c, a);
         std::string out = c.Get(InstancePath(a, "/console?lines=" + std::to_string(a.lines)));
         a.json ? PrintPretty(out) : (void)std::fputs(S(Parse(out), "output").c_str(), stdout);
       }},
      {"stop", "stop (the image's StopSignal or SIGTERM, then SIGKILL after --timeout)",
       [](CLI::App* sc, Args& a) {
         UuidArg(sc, a);
         sc->add_option("-t,--timeout", a.timeout, "seconds before SIGKILL");
       },
       [](Client& c, Args& a) {
         std::string body = "{\"action\": \"stop\"";
         if (a.timeout >= 0) body += ", \"timeout\": " + std::to_string(a.timeout);
         PrintState(a, PostAction(c, a, body + "}"));
       }},
      {"restart", "reboot: soft (stop signal, wait, start) or --hard (kill, start)",
       [](CLI::App* sc, Args& a) {
         UuidArg(sc, a);
         sc->add_flag("--hard", a.hard, "kill instead of asking the init to stop");
       },
       [](Client& c, Args& a) {
         PrintState(a, PostAction(c, a,
                                  std::string("{\"action\": \"reboot\", \"type\": \"") +
                                      (a.hard ? "HARD" : "SOFT") + "\"}"));
       }},
      {"resize", "change the flavor (cgroup limits) of an instance, live",
       [](CLI::App* sc, Args& a) {
         UuidArg(sc, a);
         sc->add_option("--memory-mb", a.memory_mb)->required();
         sc->add_option("--vcpus", a.vcpus)->required();
       },
       [](Client& c, Args& a) {
         PrintPretty(PostAction(
             c, a,
             "{\"action\": \"resize\", \"flavor\": {\"vcpus\": " + std::to_string(a.vcpus) +
                 ", \"memory_mb\": " + std::to_string(a.memory_mb) + "}}"));
       }},
      {"rm", "delete instances (their disks and records)",
       [](CLI::App* sc, Args& a) { sc->add_option("UUID", a.ids, "instance uuids")->required(); },
       [](Client& c, Args& a) {
         for (const auto& id : a.ids) {
           c.Delete("/v1/instances/" + id);
           if (!a.json) std::printf("%s\n", id.c_str());
         }
       }},
      {"stats", "cgroup statistics: cpu, memory, pids, io", UuidArg,
       [](Client& c, Args& a) { PrintPretty(c.Get(InstancePath(a, "/stats"))); }},
      {"diff", "changes of the instance's disk against its image (A added, C changed, D deleted)",
       UuidArg,
       [](Client& c, Args& a) {
         std::string out = c.Get(InstancePath(a, "/diff"));
         if (a.json) return PrintPretty(out);
         auto d = Parse(out);
         for (const auto& ch : d["changes"].GetArray()) {
           std::printf("%s %s\n", S(ch, "kind").c_str(), S(ch, "path").c_str());
         }
       }},
      {"exec", "run a command inside: exec UUID CMD... (exit status = the command's)",
       [](CLI::App* sc, Args& a) {
         UuidArg(sc, a);
         sc->add_option("CMD", a.command, "command")->required();
         sc->add_option("-e,--env", a.env, "KEY=value (repeatable)")->allow_extra_args(false);
         sc->positionals_at_end();
       },
       [](Client& c, Args& a) {
         std::string body = "{\"command\": " + JsonArray(a.command);
         if (!a.env.empty()) body += ", \"env\": " + JsonArray(a.env);
         std::string out = c.PostJson(InstancePath(a, "/exec"), body + "}");
         if (a.json) return PrintPretty(out);
         auto d = Parse(out);
         std::fputs(S(d, "stdout").c_str(), stdout);
         std::fputs(S(d, "stderr").c_str(), stderr);
         exec_status = d["exit_code"].GetInt();
       }},
      {"snapshot", "commit an instance's disk into a new image (-o: also save it as an archive)",
       [](CLI::App* sc, Args& a) {
         UuidArg(sc, a);
         sc->add_option("--name", a.name, "the new image's name")->required();
         sc->add_option("-o,--output", a.output, "write the image archive here too");
         sc->add_option("--format", a.format, "archive format: docker-archive|oci");
       },
       [](Client& c, Args& a) {
         std::string body = "{\"name\": " + JsonString(a.name);
         if (a.output.empty()) {
           std::string out = c.PostJson(InstancePath(a, "/snapshot"), body + "}");
           a.json ? PrintPretty(out) : (void)std::printf("%s\n", S(Parse(out), "id").c_str());
           return;
         }
         std::string format = a.format == "auto" ? "docker-archive" : a.format;
         c.Download("POST", InstancePath(a, "/snapshot"),
                    body + ", \"export\": true, \"export_format\": " + JsonString(format) + "}",
                    a.output);
       }},
      {"images", "list images",
       [](CLI::App* sc, Args& a) { sc->add_flag("-q,--quiet", a.quiet, "ids only"); },
       [](Client& c, Args& a) {
         std::string out = c.Get("/v1/images");
         a.json ? PrintPretty(out) : PrintImages(out, a.quiet);
       }},
      {"import", "import an image archive (docker-archive, OCI layout/archive, rootfs tar)",
       [](CLI::App* sc, Args& a) {
         sc->add_option("FILE", a.path, "archive")->required();
         sc->add_option("--format", a.format, "auto|docker-archive|oci|rootfs-tar")
             ->capture_default_str();
         sc->add_option("--name", a.name, "name for the image");
         sc->add_flag("--server-path", a.by_path,
                      "FILE is on berthd's host: import it in place instead of uploading");
       },
       [](Client& c, Args& a) {
         std::string out;
         if (a.by_path) {
           out = c.PostJson("/v1/images", "{\"path\": " + JsonString(a.path) +
                                              ", \"format\": " + JsonString(a.format) +
                                              ", \"name\": " + JsonString(a.name) + "}");
         } else {
           std::string q =
               "/v1/images?format=" + a.format + (a.name.empty() ? "" : "&name=" + a.name);
           out = c.PostFile(q, a.path);
         }
         a.json ? PrintPretty(out) : (void)std::printf("%s\n", S(Parse(out), "id").c_str());
       }},
      {"export", "save an image as a docker-archive or OCI archive",
       [](CLI::App* sc, Args& a) {
         sc->add_option("IMAGE", a.image, "image id or name")->required();
         sc->add_option("-o,--output", a.output, "file (default: stdout when not a terminal)");
         sc->add_option("--format", a.format, "docker-archive|oci");
       },
       [](Client& c, Args& a) {
         std::string out = a.output.empty() ? "-" : a.output;
         if (out == "-" && ::isatty(1)) {
           throw std::runtime_error("refusing to write an archive to a terminal: use -o FILE");
         }
         std::string format = a.format == "auto" ? "docker-archive" : a.format;
         c.Download("GET", "/v1/images/" + a.image + "/export?format=" + format, "", out);
       }},
      {"rmi", "delete images (409 while an instance uses one)",
       [](CLI::App* sc, Args& a) {
         sc->add_option("IMAGE", a.ids, "image ids or names")->required();
       },
       [](Client& c, Args& a) {
         for (const auto& id : a.ids) {
           c.Delete("/v1/images/" + id);
           if (!a.json) std::printf("%s\n", id.c_str());
         }
       }},
  };
  // The actions that only need the uuid and print the new state.
  for (const char* verb : {"start", "pause", "unpause", "suspend", "resume"}) {
    static const std::map<std::string, const char*> kHelp = {
        {"start", "start a stopped or crashed instance"},
        {"pause", "freeze an instance (Nova's pause)"},
        {"unpause", "thaw a paused instance"},
        {"suspend", "freeze an instance, recorded as suspended across berthd restarts"},
        {"resume", "thaw a suspended instance"}};
    std::string v = verb;
    cmds.push_back({verb, kHelp.at(v), UuidArg, [v](Client& c, Args& a) {
                      PrintState(a, PostAction(c, a, "{\"action\": \"" + v + "\"}"));
                    }});
  }
  return cmds;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth: talk to berthd"};
  app.require_subcommand(1);
  berth::cli::Endpoint given;
  given.url = Env("BERTH_URL");
  given.token = Env("BERTH_TOKEN");
  given.ca_file = Env("BERTH_CACERT");
  std::string token_file = Env("BERTH_TOKEN_FILE");
  std::string config_file = Env("BERTH_CONFIG", "/etc/berth/berthd.conf");
  Args args;
  app.add_option("--url", given.url,
                 "berthd endpoint ($BERTH_URL; else from --config's [api]; else "
                 "http://127.0.0.1:8780)");
  app.add_option("--token", given.token, "token ($BERTH_TOKEN)");
  app.add_option("--token-file", token_file,
                 "admin token file ($BERTH_TOKEN_FILE; else --config's token_file; else "
                 "/etc/berth/admin-token)");
  app.add_option("--config", config_file, "berthd's config, read for defaults ($BERTH_CONFIG)")
      ->capture_default_str();
  app.add_option("--cacert", given.ca_file, "CA to verify an https berthd ($BERTH_CACERT)");
  app.add_option("--cert", given.cert_file, "client certificate (https with client auth)");
  app.add_option("--key", given.key_file, "client certificate's key");
  app.add_flag("--json", args.json, "print berthd's JSON instead of tables");

  std::vector<Command> commands = Commands();
  Action chosen;
  for (auto& cmd : commands) {
    CLI::App* sc = app.add_subcommand(cmd.name, cmd.help);
    if (cmd.options) cmd.options(sc, args);
    sc->callback([&chosen, &cmd] { chosen = cmd.run; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    Client client(berth::cli::ResolveEndpoint(given, token_file, config_file));
    if (chosen) chosen(client, args);
  } catch (const ApiError& e) {
    std::fprintf(stderr, "berth: %s\n", e.what());
    return e.status == 404 ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "berth: %s\n", e.what());
    return 1;
  }
  return exec_status;
}
