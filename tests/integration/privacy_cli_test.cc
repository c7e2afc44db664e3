// `samverka privacy` as a user runs it: published accountant values, the
// noise search, and one clear error line for bad parameters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include <unistd.h>

#include "tests/integration/run_command.h"

namespace samverka {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

CommandResult Privacy(const std::string& args) {
  return RunCommand(std::string(SAMVERKA_BIN) + " privacy " + args);
}

// The number after `prefix` at the start of a line of `output`.
double NumberAfter(const std::string& output, const std::string& prefix) {
  std::smatch m;
  const std::regex re("(^|\n)" + prefix + " ([0-9.eE+-]+)");
  if (!std::regex_search(output, m, re)) return -1;
  return std::stod(m[2].str());
}

TEST(PrivacyCliTest, MatchesOpacusAndTfPrivacy) {
  // Opacus tests/accountants_test.py, test_rdp_accountant: q 0.04, sigma 1.5,
  // 2250 steps, delta 1e-5 -> epsilon 7.32911117143 (Balle et al. conversion).
  CommandResult r = Privacy(
      "--sampling-rate 0.04 --noise-multiplier 1.5 --rounds 2250 --delta 1e-5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NEAR(NumberAfter(r.output, "epsilon"), 7.32911117143, 0.01 * 7.33)
      << r.output;
  // TF Privacy tutorials/README.md: N 60000, batch 256, sigma 1.1, 60
  // epochs (14063 steps), delta 1e-5 -> "eps = 3.01" with the classic
  // conversion.
  r = Privacy(
      "--sampling-rate 0.0042666666666666667 --noise-multiplier 1.1 --rounds "
      "14063");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NEAR(NumberAfter(r.output, "epsilon \\(classic conversion\\)"), 3.01,
              0.0301)
      << r.output;
}

TEST(PrivacyCliTest, TargetEpsilonGivesTheNoiseMultiplier) {
  // Opacus tests/accountants_test.py, test_get_noise_multiplier: eps 8,
  // delta 1e-5, q 0.04, 90 epochs -> 1.425307617 (bisection to 0.01).
  CommandResult r = Privacy(
      "--sampling-rate 0.04 --target-epsilon 8 --rounds 2250 --delta 1e-5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double sigma = NumberAfter(r.output, "noise multiplier");
  EXPECT_NEAR(sigma, 1.425307617, 0.01) << r.output;
  EXPECT_LE(NumberAfter(r.output, "epsilon"), 8.0) << r.output;
  // The printed (rounded) value itself meets the target.
  CommandResult check = Privacy(
      "--sampling-rate 0.04 --rounds 2250 --delta 1e-5 --noise-multiplier " +
      std::to_string(sigma));
  ASSERT_EQ(check.exit_code, 0) << check.output;
  EXPECT_LE(NumberAfter(check.output, "epsilon"), 8.0) << check.output;
}

TEST(PrivacyCliTest, BadParametersGetOneErrorLine) {
  const std::pair<std::string, std::string> cases[] = {
      {"--sampling-rate 0.1 --noise-multiplier -1 --rounds 10",
       "noise multiplier"},
      {"--sampling-rate 0.1 --noise-multiplier 1 --rounds 10 --delta 1",
       "delta"},
      {"--sampling-rate 0.1 --noise-multiplier 1 --rounds 10 --delta 0",
       "delta"},
      {"--sampling-rate 1.5 --noise-multiplier 1 --rounds 10", "sampling rate"},
      {"--sampling-rate 0.1 --noise-multiplier 1 --rounds 0", "rounds"},
      {"--sampling-rate 0.1 --target-epsilon -3 --rounds 10", "target epsilon"},
      {"--sampling-rate 0.1 --rounds 10", "--noise-multiplier"},
      {"--sampling-rate 0.1 --noise-multiplier 1 --target-epsilon 3 --rounds "
       "10",
       "exactly one"},
      {"--noise-multiplier 1 --rounds 10", "--sampling-rate"},
  };
  for (const auto& [args, fragment] : cases) {
    CommandResult r = Privacy(args);
    EXPECT_NE(r.exit_code, 0) << args;
    ASSERT_EQ(r.lines().size(), 1u) << args << "\n" << r.output;
    EXPECT_THAT(r.lines()[0], StartsWith("samverka: error: ")) << args;
    EXPECT_THAT(r.lines()[0], HasSubstr(fragment)) << args;
  }
}

TEST(PrivacyCliTest, SimulateRejectsBadDpOptionsAtStartUp) {
  const std::filesystem::path dir = FreshTestDir("samverka_dp_cli_" + std::to_string(getpid()) + "_");
  const std::pair<std::string, std::string> cases[] = {
      {"--dp central --dp-noise-multiplier -1", "dp_noise_multiplier"},
      {"--dp central --dp-delta 1", "dp_delta"},
      {"--dp central --dp-clip-norm 0", "dp_clip_norm"},
      {"--dp distributed --secure-aggregation off", "secure_aggregation"},
      {"--dp everywhere", "dp = \"everywhere\""},
  };
  for (const auto& [args, fragment] : cases) {
    CommandResult r = RunCommand(std::string(SAMVERKA_BIN) +
                                 " --log-level warn simulate --out " +
                                 (dir / "out").string() + " " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    ASSERT_EQ(r.lines().size(), 1u) << args << "\n" << r.output;
    EXPECT_THAT(r.lines()[0], StartsWith("samverka: error: ")) << args;
    EXPECT_THAT(r.lines()[0], HasSubstr(fragment)) << args;
    EXPECT_FALSE(std::filesystem::exists(dir / "out"))
        << "nothing ran for " << args;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace samverka
