// berth: the CLI for berthd's REST API.
//   berth [--url URL] [--token-file F] [--json] host | image ... | instance ...
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "driver/cli/client.h"

namespace {

using berth::cli::ApiError;
using berth::cli::Client;

std::string Env(const char* name, const std::string& def) {
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

void PrintInstances(const std::string& json) {
  auto d = Parse(json);
  std::printf("%-36s  %-24s  %-9s  %-8s  %5s  %6s  %s\n", "UUID", "NAME", "STATE", "PID", "VCPUS",
              "MEM_MB", "IMAGE");
  for (const auto& i : d["instances"].GetArray()) {
    std::printf("%-36s  %-24s  %-9s  %-8s  %5s  %6s  %.19s\n", S(i, "uuid").c_str(),
                S(i, "name").c_str(), S(i, "power_state_name").c_str(), S(i, "pid").c_str(),
                S(i["flavor"], "vcpus").c_str(), S(i["flavor"], "memory_mb").c_str(),
                S(i, "image").c_str());
  }
}

void PrintImages(const std::string& json) {
  auto d = Parse(json);
  std::printf("%-19s  %-24s  %6s  %12s\n", "ID", "NAMES", "LAYERS", "SIZE");
  for (const auto& i : d["images"].GetArray()) {
    std::string names;
    for (const auto& n : i["names"].GetArray())
      names += (names.empty() ? "" : ",") + std::string(n.GetString());
    std::printf("%-19.19s  %-24s  %6s  %12s\n", S(i, "id").c_str(),
                names.empty() ? "-" : names.c_str(), S(i, "layer_count").c_str(),
                std::to_string(i["size"].GetUint64()).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth: talk to berthd"};
  app.require_subcommand(1);
  std::string url = Env("BERTH_URL", "http://127.0.0.1:8780");
  std::string token_file = Env("BERTH_TOKEN_FILE", "/etc/berth/admin-token");
  std::string token = Env("BERTH_TOKEN", "");
  bool json = false;
  app.add_option("--url", url, "berthd endpoint ($BERTH_URL)")->capture_default_str();
  app.add_option("--token-file", token_file, "admin token file ($BERTH_TOKEN_FILE)")
      ->capture_default_str();
  app.add_option("--token", token, "token ($BERTH_TOKEN); overrides --token-file");
  app.add_flag("--json", json, "print raw JSON instead of tables");

  std::function<void(Client&)> action;
  auto* host = app.add_subcommand("host", "host resources and versions");
  host->callback([&] { action = [](Client& c) { PrintPretty(c.Get("/v1/host")); }; });

  auto* image = app.add_subcommand("image", "images")->require_subcommand(1);
  image->add_subcommand("list", "list images")->callback([&] {
    action = [&](Client& c) {
      std::string out = c.Get("/v1/images");
      json ? PrintPretty(out) : PrintImages(out);
    };
  });
  static std::string path, format = "auto", name, id;
  auto* imp =
      image->add_subcommand("import", "import an archive (docker-archive, OCI, rootfs tar)");
  imp->add_option("PATH", path, "archive file")->required();
  imp->add_option("--format", format, "auto|docker-archive|oci|rootfs-tar")->capture_default_str();
  imp->add_option("--name", name, "name for the image");
  static bool by_path = false;
  imp->add_flag("--server-path", by_path, "PATH is on berthd's host: do not upload it");
  imp->callback([&] {
    action = [&](Client& c) {
      std::string out;
      if (by_path) {
        out = c.PostJson("/v1/images", "{\"path\": " + JsonString(path) +
                                           ", \"format\": " + JsonString(format) +
                                           ", \"name\": " + JsonString(name) + "}");
      } else {
        std::string q = "/v1/images?format=" + format + (name.empty() ? "" : "&name=" + name);
        out = c.PostFile(q, path);
      }
      json ? PrintPretty(out) : (void)std::printf("%s\n", S(Parse(out), "id").c_str());
    };
  });
  auto* ishow = image->add_subcommand("show", "show an image");
  ishow->add_option("ID", id)->required();
  ishow->callback([&] { action = [&](Client& c) { PrintPretty(c.Get("/v1/images/" + id)); }; });
  auto* irm = image->add_subcommand("rm", "delete an image");
  irm->add_option("ID", id)->required();
  irm->callback([&] { action = [&](Client& c) { c.Delete("/v1/images/" + id); }; });

  auto* inst = app.add_subcommand("instance", "instances")->require_subcommand(1);
  inst->add_subcommand("list", "list instances")->callback([&] {
    action = [&](Client& c) {
      std::string out = c.Get("/v1/instances");
      json ? PrintPretty(out) : PrintInstances(out);
    };
  });
  static std::string img, iname, uuid;
  static int64_t memory_mb = 512, vcpus = 1, timeout = -1, lines = 100;
  static std::vector<std::string> command;
  auto* create = inst->add_subcommand("create", "spawn an instance");
  create->add_option("--image", img, "image id or name")->required();
  create->add_option("--name", iname, "name (default: generated)");
  create->add_option("--uuid", uuid, "uuid (default: generated)");
  create->add_option("--memory-mb", memory_mb, "memory limit")->capture_default_str();
  create->add_option("--vcpus", vcpus, "cpus")->capture_default_str();
  create->add_option("command", command, "command (after --)");
  create->callback([&] {
    action = [&](Client& c) {
      std::string body = "{\"image\": " + JsonString(img) +
                         ", \"flavor\": {\"vcpus\": " + std::to_string(vcpus) +
                         ", \"memory_mb\": " + std::to_string(memory_mb) + "}";
      if (!iname.empty()) body += ", \"name\": " + JsonString(iname);
      if (!uuid.empty()) body += ", \"uuid\": " + JsonString(uuid);
      if (!command.empty()) body += ", \"command\": " + JsonArray(command);
      std::string out = c.PostJson("/v1/instances", body + "}");
      json ? PrintPretty(out) : (void)std::printf("%s\n", S(Parse(out), "uuid").c_str());
    };
  });
  auto uuid_cmd = [&](const char* verb, const char* help) {
    auto* sc = inst->add_subcommand(verb, help);
    sc->add_option("UUID", uuid)->required();
    return sc;
  };
  uuid_cmd("show", "show an instance")->callback([&] {
    action = [&](Client& c) { PrintPretty(c.Get("/v1/instances/" + uuid)); };
  });
  uuid_cmd("delete", "delete an instance")->callback([&] {
    action = [&](Client& c) { c.Delete("/v1/instances/" + uuid); };
  });
  auto simple_action = [&](const char* verb, const char* help) {
    auto* sc = uuid_cmd(verb, help);
    std::string v = verb;
    sc->callback([&, v] {
      action = [&, v](Client& c) {
        std::string body = "{\"action\": \"" + v + "\"";
        if (timeout >= 0) body += ", \"timeout\": " + std::to_string(timeout);
        std::string out = c.PostJson("/v1/instances/" + uuid + "/action", body + "}");
        json ? PrintPretty(out)
             : (void)std::printf("%s\n", S(Parse(out), "power_state_name").c_str());
      };
    });
    return sc;
  };
  for (const char* v : {"start", "pause", "unpause", "suspend", "resume"}) simple_action(v, v);
  simple_action("stop", "stop (SIGTERM or the image's StopSignal, then SIGKILL)")
      ->add_option("--timeout", timeout, "seconds before SIGKILL");
  static bool hard = false;
  auto* reboot = uuid_cmd("reboot", "reboot (soft, or --hard)");
  reboot->add_flag("--hard", hard);
  reboot->callback([&] {
    action = [&](Client& c) {
      std::string out = c.PostJson(
          "/v1/instances/" + uuid + "/action",
          std::string("{\"action\": \"reboot\", \"type\": \"") + (hard ? "HARD" : "SOFT") + "\"}");
      json ? PrintPretty(out)
           : (void)std::printf("%s\n", S(Parse(out), "power_state_name").c_str());
    };
  });
  auto* resize = uuid_cmd("resize", "change the flavor of an instance");
  resize->add_option("--memory-mb", memory_mb)->required();
  resize->add_option("--vcpus", vcpus)->required();
  resize->callback([&] {
    action = [&](Client& c) {
      PrintPretty(
          c.PostJson("/v1/instances/" + uuid + "/action",
                     "{\"action\": \"resize\", \"flavor\": {\"vcpus\": " + std::to_string(vcpus) +
                         ", \"memory_mb\": " + std::to_string(memory_mb) + "}}"));
    };
  });
  auto* console = uuid_cmd("console", "console log");
  console->add_option("--lines", lines)->capture_default_str();
  console->callback([&] {
    action = [&](Client& c) {
      std::string out = c.Get("/v1/instances/" + uuid + "/console?lines=" + std::to_string(lines));
      json ? PrintPretty(out) : (void)std::fputs(S(Parse(out), "output").c_str(), stdout);
    };
  });
  uuid_cmd("stats", "cgroup statistics")->callback([&] {
    action = [&](Client& c) { PrintPretty(c.Get("/v1/instances/" + uuid + "/stats")); };
  });
  static int exec_status = 0;
  auto* exec = uuid_cmd("exec", "run a command inside: exec UUID -- CMD...");
  exec->add_option("command", command, "command")->required();
  exec->callback([&] {
    action = [&](Client& c) {
      std::string out = c.PostJson("/v1/instances/" + uuid + "/exec",
                                   "{\"command\": " + JsonArray(command) + "}");
      if (json) return PrintPretty(out);
      auto d = Parse(out);
      std::fputs(S(d, "stdout").c_str(), stdout);
      std::fputs(S(d, "stderr").c_str(), stderr);
      exec_status = d["exit_code"].GetInt();
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (token.empty()) token = berth::cli::ReadToken(token_file);
    Client client(url, token);
    if (action) action(client);
  } catch (const ApiError& e) {
    std::fprintf(stderr, "berth: %s\n", e.what());
    return e.status == 404 ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "berth: %s\n", e.what());
    return 1;
  }
  return exec_status;
}
