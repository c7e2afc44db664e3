#include "common/subprocess.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <random>
#include <string>

namespace samverka {
namespace {

using ::testing::HasSubstr;

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random());
  return out;
}

TEST(SubprocessTest, RoundTripsAPayloadLargerThanThePipeBuffersBothWays) {
  // cat writes while it reads: with 48 MB each way, a parent that wrote
  // everything before reading would deadlock on the full pipes.
  const std::string payload = RandomBytes(48 << 20, 1);
  absl::StatusOr<std::string> out = RunSubprocess({.argv = {"/bin/cat"}, .stdin_data = payload});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->size(), payload.size());
  EXPECT_TRUE(*out == payload);
}

TEST(SubprocessTest, ReadsOutputWithoutInput) {
  absl::StatusOr<std::string> out = RunSubprocess({.argv = {"/usr/bin/printf", "%s\\n", "a b", "c"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "a b\nc\n");  // arguments are passed as given, no shell
}

TEST(SubprocessTest, SetsEnvironmentAndDefaultsOnlyWhereUnset) {
  setenv("SAMVERKA_SUBPROCESS_TEST_SET", "mine", 1);
  absl::StatusOr<std::string> out = RunSubprocess(
      {.argv = {"/bin/sh", "-c", "echo $A,$SAMVERKA_SUBPROCESS_TEST_SET,$B"},
       .environment = {{"A", "1"}},
       .environment_defaults = {{"SAMVERKA_SUBPROCESS_TEST_SET", "default"}, {"B", "2"}}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "1,mine,2\n");
}

TEST(SubprocessTest, NonZeroExitNamesTheCodeAndTheLastStderrLine) {
  absl::StatusOr<std::string> out = RunSubprocess(
      {.argv = {"/bin/sh", "-c", "echo first >&2; echo 'the reason' >&2; echo >&2; exit 3"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(out.status().message(), HasSubstr("/bin/sh exited with code 3: the reason"));
}

TEST(SubprocessTest, AChildThatStopsReadingDoesNotKillTheParent) {
  // The child exits without reading 8 MB of stdin: the parent sees EPIPE,
  // not SIGPIPE, and reports the exit.
  absl::StatusOr<std::string> out =
      RunSubprocess({.argv = {"/bin/sh", "-c", "exit 4"}, .stdin_data = RandomBytes(8 << 20, 2)});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("exited with code 4 (no message on stderr)"));
}

TEST(SubprocessTest, AChildPastItsTimeoutIsKilledWithItsChildren) {
  // The shell starts a grandchild that keeps the pipes open; the whole
  // process group goes, so the call returns rather than waiting 600 s.
  absl::StatusOr<std::string> out = RunSubprocess(
      {.argv = {"/bin/sh", "-c", "sleep 600 & wait"}, .timeout = absl::Milliseconds(200)});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(out.status().message(), HasSubstr("/bin/sh did not finish within 200ms"));
}

TEST(SubprocessTest, AChildWithinItsTimeoutRunsToTheEnd) {
  absl::StatusOr<std::string> out = RunSubprocess(
      {.argv = {"/bin/sh", "-c", "echo done"}, .timeout = absl::Seconds(120)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "done\n");
}

TEST(SubprocessTest, MissingProgramIsNotFoundAndNamesThePath) {
  absl::StatusOr<std::string> out = RunSubprocess({.argv = {"/nonexistent/samverka-torch", "model"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(out.status().message(), HasSubstr("cannot start /nonexistent/samverka-torch"));
}

TEST(SubprocessTest, ProgramIsNotLookedUpOnThePath) {
  absl::StatusOr<std::string> out = RunSubprocess({.argv = {"cat"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound);
}

TEST(SubprocessTest, KilledBySignalNamesTheSignal) {
  absl::StatusOr<std::string> out = RunSubprocess({.argv = {"/bin/sh", "-c", "kill -KILL $$"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(out.status().message(), HasSubstr("killed by signal 9 (SIGKILL)"));
}

TEST(SubprocessTest, ChildRunsInItsOwnProcessGroup) {
  // A terminal's SIGINT to our group must not reach the child.
  absl::StatusOr<std::string> out = RunSubprocess({.argv = {"/bin/sh", "-c", "cut -d' ' -f5 /proc/$$/stat"}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(std::stol(*out), static_cast<long>(getpgrp()));
}

TEST(SubprocessTest, EmptyArgvIsInvalid) {
  EXPECT_EQ(RunSubprocess({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka
