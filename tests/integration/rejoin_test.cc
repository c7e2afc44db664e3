// Sites find a restarted coordinator by themselves, within a few seconds
// (issue: they used to take 15-20 s, or never with a short connect timeout,
// because gRPC's sync API advanced a reconnection only while a call waited
// on it, and every call failed fast).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>

#include "tests/integration/federation_fixture.h"

namespace samverka {
namespace {

class RejoinTest : public FederationFixture {};

TEST_F(RejoinTest, SitesReRegisterWithinSecondsOfACoordinatorRestart) {
  // Many rounds, so the federation is still running when it is killed.
  const int port = StartCoordinator(50, 3, 3, "wait_for_clients = 3\n");
  ASSERT_GT(port, 0);
  for (const char* site : {"site-a", "site-b", "site-c"}) {
    StartClient(site, port, std::string("hospital-") + site[5] + ".csv");
  }
  for (auto& client : clients_) {
    ASSERT_TRUE(client->WaitFor("registered with federation")) << client->output();
  }
  coordinator_->Kill(SIGKILL);
  EXPECT_EQ(coordinator_->Wait(), 128 + SIGKILL);
  // Every site has seen the coordinator go, and is in its backoff.
  for (auto& client : clients_) {
    ASSERT_TRUE(client->WaitFor("retrying with backoff")) << client->output();
  }

  RestartCoordinatorOn(port);
  ASSERT_TRUE(coordinator_->WaitFor("with mutual TLS")) << coordinator_->output();
  // The site's backoff is at most 5 s (and gRPC's reconnection backoff the
  // same), so each site is back well within 15 s, the old median.
  for (auto& client : clients_) {
    EXPECT_TRUE(client->WaitForCount("registered with federation", 2, std::chrono::seconds(12)))
        << client->output();
  }
  coordinator_->Kill(SIGTERM);
}

}  // namespace
}  // namespace samverka
