#include "runtime/network/ipam.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth::net {
namespace {

const Ipv4Subnet kSubnet = Ipv4Subnet::Parse("10.88.0.0/29");  // .1 gateway, .2-.6 usable
const Ipv4Address kGateway = Ipv4Address::Parse("10.88.0.1");

TEST(IpamTest, HandsOutHostsSkippingReservedUntilFull) {
  testing::TempDir dir;
  Ipam ipam(dir.Sub("leases"), kSubnet, kGateway);
  std::set<std::string> got;
  for (int i = 0; i < 5; ++i) got.insert(ipam.Allocate("i" + std::to_string(i)).ToString());
  EXPECT_EQ(got, (std::set<std::string>{"10.88.0.2", "10.88.0.3", "10.88.0.4", "10.88.0.5",
                                        "10.88.0.6"}));
  try {
    ipam.Allocate("one-too-many");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kResourceExhausted) << e.what();
  }
  EXPECT_EQ(ipam.List().size(), 5u);
}

TEST(IpamTest, SameOwnerGetsSameLeaseAndReleaseFrees) {
  testing::TempDir dir;
  Ipam ipam(dir.Sub("leases"), kSubnet, kGateway);
  auto a = ipam.Allocate("inst-a");
  EXPECT_EQ(ipam.Allocate("inst-a"), a) << "a retried attach must not leak an address";
  EXPECT_EQ(ipam.Find("inst-a"), a);
  EXPECT_EQ(ReadFile(dir.Sub("leases/" + a.ToString())), "inst-a\n");
  EXPECT_TRUE(ipam.Release(a));
  EXPECT_FALSE(ipam.Release(a));
  EXPECT_FALSE(ipam.Find("inst-a"));
  auto b = ipam.Allocate("inst-b");
  EXPECT_NE(b, a) << "next-fit: a just-released address is not reused at once";
  EXPECT_EQ(ipam.ReleaseOwner("inst-b"), 1u);
  EXPECT_TRUE(ipam.List().empty());
}

TEST(IpamTest, RejectsBadConfigAndOwners) {
  testing::TempDir dir;
  EXPECT_THROW(Ipam(dir.Sub("a"), Ipv4Subnet::Parse("10.88.0.0/30"), kGateway), Error);
  EXPECT_THROW(Ipam(dir.Sub("b"), kSubnet, Ipv4Address::Parse("10.88.0.7")), Error);
  EXPECT_THROW(Ipam(dir.Sub("c"), kSubnet, Ipv4Address::Parse("10.89.0.1")), Error);
  Ipam ipam(dir.Sub("d"), kSubnet, kGateway);
  EXPECT_THROW(ipam.Allocate(""), Error);
  EXPECT_THROW(ipam.Allocate("a\nb"), Error);
  ipam.Allocate("x");
  try {
    Ipam other(dir.Sub("d"), Ipv4Subnet::Parse("10.99.0.0/24"), Ipv4Address::Parse("10.99.0.1"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict) << e.what();
  }
}

TEST(IpamTest, SurvivesACrashAndReconcileFreesTheDead) {
  testing::TempDir dir;
  std::string state = dir.Sub("leases");
  Ipv4Address a, b;
  {
    Ipam before(state, kSubnet, kGateway);
    a = before.Allocate("alive");
    b = before.Allocate("dead");
  }
  // A crash between O_EXCL create and the write leaves an empty lease file.
  Ipv4Address torn = Ipv4Address::Parse("10.88.0.6");
  {
    int fd = ::open((state + "/" + torn.ToString()).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }

  Ipam after(state, kSubnet, kGateway);
  EXPECT_EQ(after.Find("alive"), a) << "addresses are unchanged across a restart";
  auto c = after.Allocate("new");
  EXPECT_NE(c, a);
  EXPECT_NE(c, b);
  EXPECT_NE(c, torn) << "a torn lease is still taken";

  auto freed = after.Reconcile({"alive", "new"});
  std::set<std::string> freed_addrs;
  for (auto& l : freed) freed_addrs.insert(l.address.ToString());
  EXPECT_EQ(freed_addrs, (std::set<std::string>{b.ToString(), torn.ToString()}));
  std::set<std::string> owners;
  for (auto& l : after.List()) owners.insert(l.owner);
  EXPECT_EQ(owners, (std::set<std::string>{"alive", "new"}));
}

// Several processes allocating at once from one state dir never get the same address.
TEST(IpamTest, ConcurrentProcessesNeverShareAnAddress) {
  testing::TempDir dir;
  std::string state = dir.Sub("leases");
  const Ipv4Subnet subnet = Ipv4Subnet::Parse("10.88.0.0/24");
  Ipam(state, subnet, kGateway);
  constexpr int kProcs = 4, kEach = 20;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(pipefd[0]);
      int rc = 0;
      try {
        Ipam ipam(state, subnet, kGateway);
        for (int i = 0; i < kEach; ++i) {
          uint32_t v = ipam.Allocate("p" + std::to_string(p) + "-" + std::to_string(i)).value;
          if (::write(pipefd[1], &v, sizeof v) != sizeof v) rc = 2;
        }
      } catch (...) {
        rc = 1;
      }
      ::_exit(rc);
    }
    kids.push_back(pid);
  }
  ::close(pipefd[1]);
  std::multiset<uint32_t> handed;
  uint32_t v;
  while (::read(pipefd[0], &v, sizeof v) == sizeof v) handed.insert(v);
  ::close(pipefd[0]);
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(handed.size(), size_t{kProcs * kEach});
  EXPECT_EQ(std::set<uint32_t>(handed.begin(), handed.end()).size(), handed.size());
  EXPECT_EQ(Ipam(state, subnet, kGateway).List().size(), handed.size());
}

}  // namespace
}  // namespace berth::net
