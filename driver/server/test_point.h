// TEST-ONLY crash points. With BERTH_TEST_PAUSE_AT=<name> in its environment, berthd
// stops for good when it reaches the point of that name: it prints "paused at <name>" on
// stdout and sleeps until killed. The crash tests use it to SIGKILL berthd at an exact
// step of a spawn or a delete instead of sleeping and hoping. Never set it in production:
// the request that reaches the point never completes.
//
// Points: spawn-after-launch (container created, network attached; not started, record
// not yet written), spawn-after-record (the record written and synced, the container not
// yet started: Recover completes the spawn), delete-mid-teardown (record unlinked, container gone;
// mount, snapshot and network not yet released), rebuild-after-prepare (new disk ready, old one
// still in use), pool-after-snapshot and pool-after-mount (the rootfs pool's thread, making the
// next spawn's root: its snapshot made; then mounted at its staging dir, not yet detached;
// rootfs_pool.h), spawn-after-pooled-root (a spawn took the root made ahead: mounted on its rootfs,
// its snapshot in no record yet).
#pragma once

namespace berth::server {

void TestPausePoint(const char* name);
// Whether berthd is to pause at `name` (to reach a point in a known order).
bool TestPauseWanted(const char* name);

}  // namespace berth::server
