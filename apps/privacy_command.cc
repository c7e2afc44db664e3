// `samverka privacy`: plans a differentially private federation with the
// RDP accountant (docs/privacy.md).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/commands.h"
#include "fmt/format.h"
#include "security/dp/accountant.h"

namespace samverka::apps {
namespace {

namespace dp = security::dp;

struct PrivacyFlags {
  double sampling_rate = 0;
  double noise_multiplier = 0;
  int64_t rounds = 0;
  double delta = 1e-5;
  double target_epsilon = 0;
  std::string conversion = "balle";
};

void Run(const PrivacyFlags& f, bool has_sigma, bool has_target, bool has_q,
         bool has_rounds) {
  if (!has_q)
    return Fail("--sampling-rate is required (clients per round / clients)");
  if (!has_rounds) return Fail("--rounds is required");
  if (has_sigma == has_target) {
    return Fail(
        "give exactly one of --noise-multiplier (to get epsilon) and "
        "--target-epsilon "
        "(to get the smallest noise multiplier)");
  }
  const dp::Conversion conversion = f.conversion == "classic"
                                        ? dp::Conversion::kClassic
                                        : dp::Conversion::kBalle2020;
  double sigma = f.noise_multiplier;
  if (has_target) {
    absl::StatusOr<double> found = dp::SmallestNoiseMultiplier(
        f.sampling_rate, f.rounds, f.delta, f.target_epsilon, conversion);
    if (!found.ok()) return Fail(std::string(found.status().message()));
    // Printed to 4 decimals, rounded up so the printed value (which users
    // copy into their config) still meets the target; the epsilon lines
    // below are for that printed value.
    sigma = std::ceil(*found * 1e4) / 1e4;
    std::printf(
        "noise multiplier %.4f (smallest with epsilon <= %g after %lld rounds "
        "at "
        "sampling rate %g, delta %g, %s conversion)\n",
        sigma, f.target_epsilon, static_cast<long long>(f.rounds),
        f.sampling_rate, f.delta, f.conversion.c_str());
  }
  absl::StatusOr<dp::PrivacySpent> balle = dp::ComputeEpsilon(
      f.sampling_rate, sigma, f.rounds, f.delta, dp::Conversion::kBalle2020);
  if (!balle.ok()) return Fail(std::string(balle.status().message()));
  absl::StatusOr<dp::PrivacySpent> classic = dp::ComputeEpsilon(
      f.sampling_rate, sigma, f.rounds, f.delta, dp::Conversion::kClassic);
  if (!classic.ok()) return Fail(std::string(classic.status().message()));
  if (!has_target) {
    std::printf(
        "sampling rate %g, noise multiplier %g, %lld rounds, delta %g\n",
        f.sampling_rate, sigma, static_cast<long long>(f.rounds), f.delta);
  }
  std::printf(
      "epsilon %.6g (order %g; Balle et al. 2020 conversion, as Opacus)\n",
      balle->epsilon, balle->order);
  std::printf("epsilon (classic conversion) %.6g (order %g; Mironov 2017)\n",
              classic->epsilon, classic->order);
}

}  // namespace

void AddPrivacyCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "privacy",
      "Plan differential privacy: epsilon for a noise multiplier, or the noise "
      "multiplier for a "
      "target epsilon (RDP accountant of the sampled Gaussian mechanism)");
  auto f = std::make_shared<PrivacyFlags>();
  CLI::Option* q =
      cmd->add_option("--sampling-rate", f->sampling_rate,
                      "probability that a client takes part in a round "
                      "(clients_per_round / clients), in (0, 1]");
  CLI::Option* sigma =
      cmd->add_option("--noise-multiplier", f->noise_multiplier,
                      "noise standard deviation / clipping norm (> 0)");
  CLI::Option* rounds =
      cmd->add_option("--rounds", f->rounds, "number of rounds (>= 1)");
  cmd->add_option("--delta", f->delta,
                  "delta of the (epsilon, delta) guarantee, in (0, 1)")
      ->capture_default_str();
  CLI::Option* target = cmd->add_option(
      "--target-epsilon", f->target_epsilon,
      "print the smallest noise multiplier meeting this epsilon");
  cmd->add_option(
         "--conversion", f->conversion,
         "RDP to (epsilon, delta) conversion used for --target-epsilon: balle "
         "(Balle et al. 2020, tighter) or classic (Mironov 2017)")
      ->check(CLI::IsMember({"balle", "classic"}))
      ->capture_default_str();
  cmd->callback([f, q, sigma, rounds, target] {
    Run(*f, sigma->count() > 0, target->count() > 0, q->count() > 0,
        rounds->count() > 0);
  });
}

}  // namespace samverka::apps
