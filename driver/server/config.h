// berthd's configuration: an INI file with OpenStack-style sections, read with inih. Every
// option has a default (etc/berthd.conf.example documents them all), so an empty or
// missing file is a valid configuration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "driver/server/network_config.h"

namespace berth::server {

struct Config {
  // [DEFAULT]
  std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
  std::string state_dir = "/var/lib/berth";
  std::string run_dir = "/run/berth";
  // [api]
  std::string listen = "127.0.0.1";
  uint16_t port = 8780;  // 0: pick a free port and log it
  std::string token_file = "/etc/berth/admin-token";
  uint64_t max_body_size = 1 << 20;              // JSON request bodies
  uint64_t max_upload_size = uint64_t{1} << 30;  // image archives sent as the request body
  int threads = 4;
  // Threads for the requests that may take long (RouteDef::long_running), off Pistache's.
  int long_request_threads = 16;
  // Both set: serve HTTPS with this PEM certificate (chain) and key; neither: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Set (needs TLS): refuse clients without a certificate signed by this PEM CA bundle.
  std::string tls_client_ca_file;
  // [storage]
  std::string storage_driver = "overlay";
  // [instances]
  std::string cgroup_parent = "berth";
  uint64_t console_max_bytes = 1 << 20;
  int default_stop_timeout = 10;  // seconds
  uint64_t exec_max_output = 1 << 20;
  // How often the cached instance states (GET /v1/instances, /metrics) are all refreshed
  // from the monitors, in ms, for what no status file tells (a monitor killed); a change a
  // monitor records is seen at once (ContainerWatcher). 0: never.
  int state_refresh_ms = 1000;
  // Open `console?follow=true` streams at once; more get 503.
  uint64_t max_console_followers = 64;
  // Containers are created by a small process forked at start-up (runtime/linux/spawner.h),
  // whose forks are cheap; false: by berthd itself.
  bool spawner = true;
  // Shells (runtime/linux/shell.h) the spawner keeps made ahead for the next spawn's user
  // namespace slot; 0: none.
  uint64_t shells = 1;
  // After a spawn, the next spawn's root filesystem (snapshot and mounts) is made ahead for
  // the same image and the next user namespace slot (rootfs_pool.h).
  bool rootfs_pool = true;

  // [network]
  NetworkOptions network;

  // [keystone]: unset auth_url = no Keystone. With service credentials (username), berthd
  // accepts Keystone tokens holding one of allowed_roles besides its admin token, and
  // reads Glance with its own token when a request brings none.
  std::string keystone_auth_url;
  std::string keystone_username;
  std::string keystone_password;
  std::string keystone_user_domain_name = "Default";
  std::string keystone_project_name;
  std::string keystone_project_domain_name = "Default";
  bool keystone_accept_tokens = true;
  std::vector<std::string> keystone_allowed_roles = {"admin"};
  int keystone_token_cache_seconds = 60;
  int keystone_refresh_margin = 300;  // seconds before expiry a service token is renewed
  int keystone_timeout = 30;          // seconds per Keystone call
  std::string keystone_ca_file;
  bool keystone_insecure = false;
  // [glance]: used when api_url or [keystone] auth_url is set.
  std::string glance_api_url;  // empty: the catalog's "image" endpoint
  std::string glance_interface = "public";
  std::string glance_region_name;  // empty: any region
  int glance_retries = 3;          // retries after the first try (5xx, dropped connections)
  int glance_retry_backoff_ms = 200;
  int glance_retry_backoff_max_ms = 5000;
  int glance_connect_timeout = 10;    // seconds
  int glance_stall_timeout = 60;      // seconds without a byte before a transfer is dropped
  bool glance_presync = true;         // sync images with berth_presync=true in the background
  int glance_presync_interval = 600;  // seconds between listings; 0: at start only
  std::string glance_ca_file;
  bool glance_insecure = false;

  // [security] (docs/threat-model.md)
  bool userns = true;                  // every instance in a user namespace of its own
  std::string userns_user = "berth";   // whose /etc/subuid and /etc/subgid ranges are used
  uint32_t userns_range_size = 65536;  // ids per instance
  std::string subid_dir = "/etc";      // where subuid and subgid live (tests point elsewhere)
  bool allow_privileged = false;       // honour the berth:privileged=true extra spec

  std::vector<std::string> warnings;  // unknown options, reported once logging is up

  std::string instances_dir() const { return state_dir + "/instances"; }
  std::string containers_dir() const { return run_dir + "/containers"; }
  bool tls() const { return !tls_cert_file.empty(); }
  bool keystone() const { return !keystone_auth_url.empty(); }
  bool glance() const { return !glance_api_url.empty() || keystone(); }
};

// Parses INI text; a bad value is kInvalidArgument naming section and key.
Config ParseConfig(const std::string& text);
// Reads the file (missing: kNotFound) and parses it.
Config LoadConfig(const std::string& path);

// Checks that every configured TLS file can be opened for reading, so that a bad path is a
// start-up error naming the option rather than Pistache's vague OpenSSL failure.
void CheckTlsFiles(const Config& config);

// Reads the admin token, or creates the file (mode 0600, its directory 0700 when made)
// with a fresh random token. A file readable by others is refused (kInvalidArgument).
std::string LoadOrCreateToken(const std::string& path);

// Compares two secrets in time that does not depend on where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace berth::server
