// berth-image: offline maintenance of the image store (import, export, list, inspect, rm,
// gc), snapshots for tests and benchmarks (prepare, mount, umount, snapshot-rm), and a
// snapshot's changes (diff, commit).
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "runtime/common/error.h"
#include "runtime/common/phase_timer.h"
#include "runtime/store/image/image_store.h"
#include "runtime/store/layer/mount.h"

namespace {

using berth::store::ImageRecord;
using berth::store::ImageStore;

std::string HumanSize(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 30)) {
    snprintf(buf, sizeof buf, "%.1f GB", bytes / 1073741824.0);
  } else if (bytes >= (1u << 20)) {
    snprintf(buf, sizeof buf, "%.1f MB", bytes / 1048576.0);
  } else {
    snprintf(buf, sizeof buf, "%.1f kB", bytes / 1024.0);
  }
  return buf;
}

void PrintMounts(const std::vector<berth::store::Mount>& mounts) {
  for (const auto& m : mounts) {
    std::string opts;
    for (const auto& o : m.options) opts += (opts.empty() ? "" : ",") + o;
    std::cout << "type=" << m.type << " source=" << m.source << " options=" << opts << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"berth-image: the Berth image and layer store"};
  std::string root = "/var/lib/berth";
  std::string driver = "overlay";
  app.add_option("--root", root, "store root directory")->capture_default_str();
  app.add_option("--driver", driver, "layer driver: overlay, vfs or btrfs")->capture_default_str();
  app.require_subcommand(1);

  auto* import = app.add_subcommand("import", "import an image archive or rootfs tarball");
  std::string file, format = "auto", name;
  import->add_option("FILE", file, "docker-archive, OCI layout (dir or tar), or rootfs tar")
      ->required();
  import->add_option("--format", format, "auto|docker-archive|oci|rootfs-tar")
      ->capture_default_str();
  import->add_option("--name", name, "a name for the image");

  auto* list = app.add_subcommand("list", "list images");
  auto* inspect = app.add_subcommand("inspect", "print an image record as JSON");
  std::string ref;
  inspect->add_option("ID", ref, "image id, id prefix or name")->required();
  auto* rm = app.add_subcommand("rm", "remove an image and the layers only it used");
  rm->add_option("ID", ref, "image id, id prefix or name")->required();

  auto* prepare = app.add_subcommand("prepare", "prepare a writable snapshot on an image");
  std::string key, target;
  prepare->add_option("ID", ref, "image")->required();
  prepare->add_option("KEY", key, "snapshot key")->required();
  auto* mount = app.add_subcommand("mount", "mount a prepared snapshot");
  mount->add_option("KEY", key, "snapshot key")->required();
  mount->add_option("TARGET", target, "mount point")->required();
  auto* umount = app.add_subcommand("umount", "unmount a snapshot mount point");
  umount->add_option("TARGET", target, "mount point")->required();
  auto* srm = app.add_subcommand("snapshot-rm", "remove a snapshot");
  srm->add_option("KEY", key, "snapshot key")->required();

  auto* diff =
      app.add_subcommand("diff", "list a snapshot's changes (A added, C changed, D deleted)");
  diff->add_option("KEY", key, "active snapshot key")->required();
  auto* commit = app.add_subcommand("commit", "commit a snapshot's changes into a new image");
  berth::store::CommitOptions copts;
  commit->add_option("KEY", key, "active snapshot key")->required();
  commit->add_option("--name", copts.name, "a name for the new image");
  commit->add_option("--author", copts.author, "author recorded in the config and history");
  commit->add_option("-m,--message", copts.comment, "comment recorded in the history");
  auto* exp = app.add_subcommand("export", "write an image as a docker-archive or OCI archive");
  std::string export_format = "docker-archive";
  exp->add_option("ID", ref, "image id, id prefix or name")->required();
  exp->add_option("--format", export_format, "docker-archive|oci")->capture_default_str();
  exp->add_option("FILE", file, "output file, - for stdout")->required();
  auto* gc = app.add_subcommand("gc", "remove unreferenced layers, blobs and crash leftovers");

  CLI11_PARSE(app, argc, argv);

  try {
    if (umount->parsed()) {
      berth::store::UnmountAll(target);
      return 0;
    }
    ImageStore store(root, driver);
    if (import->parsed()) {
      berth::store::ImportOptions opts;
      opts.format = berth::store::ParseImportFormat(format);
      opts.name = name;
      auto start = std::chrono::steady_clock::now();
      auto result = store.Import(file, opts);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << result.image.id.str() << "\n";
      if (::isatty(STDERR_FILENO)) {
        std::fprintf(stderr, "%zu layer(s) unpacked, %s read in %.2fs (%.0f MB/s)\n",
                     result.layers_unpacked, HumanSize(result.bytes_read).c_str(), secs,
                     secs > 0 ? result.bytes_read / 1e6 / secs : 0.0);
      }
    } else if (list->parsed()) {
      std::printf("%-14s %-7s %-10s %s\n", "ID", "LAYERS", "SIZE", "NAMES");
      for (const ImageRecord& r : store.List()) {
        std::string names;
        for (const auto& n : r.names) names += (names.empty() ? "" : ",") + n;
        std::printf("%-14s %-7zu %-10s %s\n", r.id.Short().c_str(), r.layers.size(),
                    HumanSize(r.size).c_str(), names.c_str());
      }
    } else if (inspect->parsed()) {
      std::cout << ImageStore::RecordToJson(store.Get(ref)) << "\n";
    } else if (rm->parsed()) {
      store.Remove(ref);
    } else if (prepare->parsed()) {
      ImageRecord r = store.Get(ref);
      berth::PhaseTimer timer("berth-image");  // BERTH_TIMING=1: the in-process cost
      auto mounts = store.layers().Prepare(key, r.top_chain().str());
      timer.Mark("prepare");
      PrintMounts(mounts);
    } else if (mount->parsed()) {
      berth::store::PerformMounts(store.layers().Mounts(key), target);
    } else if (srm->parsed()) {
      store.layers().Remove(key);
    } else if (diff->parsed()) {
      for (const auto& c : store.Diff(key)) {
        std::printf("%c %s\n", berth::store::ChangeLetter(c.kind), c.path.c_str());
      }
    } else if (commit->parsed()) {
      std::cout << store.Commit(key, copts).id.str() << "\n";
    } else if (exp->parsed()) {
      auto fmt = berth::store::ParseExportFormat(export_format);
      auto r =
          file == "-" ? store.Export(ref, fmt, STDOUT_FILENO) : store.ExportToFile(ref, fmt, file);
      if (r.diff_ids_rewritten) {
        std::fprintf(stderr,
                     "berth-image: rebuilt layer tars differ from the recorded diff_ids; the "
                     "exported image is %s\n",
                     r.config.str().c_str());
      }
    } else if (gc->parsed()) {
      auto r = store.Gc();
      std::printf(
          "removed: %zu layer(s), %zu scratch snapshot(s), %zu blob(s), %zu layer record(s), "
          "%zu orphan dir(s); %zu interrupted rm finished\n",
          r.layers, r.snapshots, r.blobs, r.layer_records, r.dirs, r.removals_finished);
    }
  } catch (const berth::Error& e) {
    std::fprintf(stderr, "berth-image: %s\n", e.what());
    return e.kind() == berth::ErrorKind::kNotFound ? 2 : 1;
  }
  return 0;
}
