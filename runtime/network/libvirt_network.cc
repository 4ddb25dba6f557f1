#include "runtime/network/libvirt_network.h"

#include <memory>
#include <mutex>

#include "runtime/common/error.h"

#ifdef BERTH_HAVE_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif

namespace berth::net {

#ifdef BERTH_HAVE_LIBVIRT
namespace {

// libvirt's default error handler prints every error to stderr; ours come back as
// exceptions, so silence it (once, for the process) and initialise the library.
void InitLibvirt() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  });
}

std::string LastLibvirtError() {
  const char* message = virGetLastErrorMessage();
  return message ? message : "unknown libvirt error";
}

int LastLibvirtCode() {
  virErrorPtr err = virGetLastError();
  return err ? err->code : VIR_ERR_OK;
}

struct ConnectClose {
  void operator()(virConnectPtr conn) const { virConnectClose(conn); }
};
struct NetworkFree {
  void operator()(virNetworkPtr net) const { virNetworkFree(net); }
};

}  // namespace

bool HaveLibvirt() { return true; }

std::string LookupLibvirtBridge(const std::string& uri, const std::string& network) {
  InitLibvirt();
  const std::string what = "libvirt network \"" + network + "\" at " + uri;
  std::unique_ptr<virConnect, ConnectClose> conn(virConnectOpen(uri.c_str()));
  if (!conn) {
    throw Error(ErrorKind::kUnsupported, "libvirtd is not reachable at " + uri + ": " +
                                             LastLibvirtError() +
                                             " (is libvirtd, or virtnetworkd, running?)");
  }
  std::unique_ptr<virNetwork, NetworkFree> net(virNetworkLookupByName(conn.get(), network.c_str()));
  if (!net) {
    if (LastLibvirtCode() == VIR_ERR_NO_NETWORK) {
      throw Error(ErrorKind::kNotFound, what + " does not exist");
    }
    throw Error(ErrorKind::kSystem, what + ": lookup: " + LastLibvirtError());
  }
  int active = virNetworkIsActive(net.get());
  if (active < 0) throw Error(ErrorKind::kSystem, what + ": is-active: " + LastLibvirtError());
  if (active == 0) {
    throw Error(ErrorKind::kConflict, what + " is not active (virsh net-start " + network + ")");
  }
  std::unique_ptr<char, decltype(&free)> bridge(virNetworkGetBridgeName(net.get()), &free);
  if (!bridge) {
    throw Error(ErrorKind::kUnsupported,
                what + " has no bridge (" + LastLibvirtError() +
                    "); only bridge-backed networks (NAT, route, isolated, bridge) can be joined");
  }
  return bridge.get();
}

#else

bool HaveLibvirt() { return false; }

std::string LookupLibvirtBridge(const std::string& uri, const std::string& network) {
  throw Error(ErrorKind::kUnsupported, "libvirt network \"" + network + "\" at " + uri +
                                           ": berth was built without libvirt (libvirt-dev)");
}

#endif

}  // namespace berth::net
