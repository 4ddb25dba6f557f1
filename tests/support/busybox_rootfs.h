// Builds the test payload: a root filesystem made of Debian's busybox-static, with an
// applet symlink for every command it has, and a bundle around it.
#pragma once

#include <string>

namespace berth::testing {

// Creates <dir> (mode 0755) with bin/busybox, bin/<applet> links, and the empty
// directories a container needs (proc, sys, dev, tmp, etc, mnt, root).
void BuildBusyboxRootfs(const std::string& dir);

}  // namespace berth::testing
