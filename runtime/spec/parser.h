// Reads an OCI runtime-spec config.json into spec::Spec and validates it. Every error is
// ErrorKind::kInvalidArgument and names the field by its JSON path, e.g.
// "config.json: linux.namespaces[2].type: unknown namespace type \"foo\"".
#pragma once

#include <string>
#include <string_view>

#include "runtime/spec/spec.h"

namespace berth::spec {

// Parses JSON text. Validation of shape and values is done here (types, ranges, enums).
Spec ParseSpec(std::string_view json);

// Reads <bundle>/config.json, parses it, and resolves root.path against the bundle
// (the result's root.path is absolute). Checks the rootfs exists and is a directory.
Spec LoadBundle(const std::string& bundle_dir);

// Checks that cross field rules hold (e.g. uid mappings need a user namespace, the
// rootfs path is set, args non-empty, cwd absolute). ParseSpec calls it; berthd calls it
// on the specs it builds.
void ValidateSpec(const Spec& spec);

// Serialises a Spec back to config.json text, compact: berthd's specs (~30 KB indented)
// travel to the shell's init and are parsed on the spawn path.
std::string SerializeSpec(const Spec& spec);
// The same, indented for a person to edit (`berth-runtime spec`, as `runc spec` writes it).
std::string SerializeSpecIndented(const Spec& spec);

// The default spec `berth-runtime spec` writes: like `crun spec` (sh in a busybox-style
// rootfs, all namespaces but user and cgroup, the standard mounts, masked paths).
Spec DefaultSpec();

}  // namespace berth::spec
