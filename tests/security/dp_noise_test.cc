// Tests of clipping, adaptive clipping and the noise samplers. The
// statistical tests compare sample moments with their expectations within
// 5 standard errors of the estimator (a false alarm about once in 1.7
// million runs), so they do not flake.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "security/dp/dp.h"
#include "security/dp/noise.h"

namespace samverka::security::dp {
namespace {

using ::testing::HasSubstr;

TEST(DpNoiseTest, ClipL2ScalesOnlyLongVectors) {
  std::vector<float> v = {3, 4};  // norm 5
  absl::StatusOr<ClipResult> r = ClipL2(v, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->norm, 5);
  EXPECT_FALSE(r->clipped);
  EXPECT_EQ(v, (std::vector<float>{3, 4}));
  r = ClipL2(v, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->norm, 5);
  EXPECT_TRUE(r->clipped);
  EXPECT_FLOAT_EQ(v[0], 0.6f);  // 3 / 5
  EXPECT_FLOAT_EQ(v[1], 0.8f);  // 4 / 5
}

TEST(DpNoiseTest, ClipL2RejectsBadInput) {
  std::vector<float> v = {1, NAN};
  EXPECT_THAT(ClipL2(v, 1).status().message(), HasSubstr("index 1"));
  std::vector<float> w = {1, 2};
  EXPECT_THAT(ClipL2(w, 0).status().message(), HasSubstr("clipping norm"));
  EXPECT_THAT(ClipL2(w, -1).status().message(), HasSubstr("clipping norm"));
}

TEST(DpNoiseTest, GaussianMomentsMatch) {
  // n draws of N(0, 4): the sample mean has standard error 2 / sqrt(n); the
  // sample variance has standard error ~ 4 sqrt(2 / n).
  const int n = 200000;
  std::vector<double> x(n, 0.0);
  GaussianNoise noise;
  ASSERT_TRUE(noise.Add(x, 2.0).ok());
  double mean = 0;
  for (double v : x) mean += v;
  mean /= n;
  double var = 0;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= n - 1;
  EXPECT_NEAR(mean, 0, 5 * 2 / std::sqrt(n));
  EXPECT_NEAR(var, 4, 5 * 4 * std::sqrt(2.0 / n));
  // A tail check: P(|Z| > 2 sigma) = erfc(sqrt 2) = 0.04550026 for a Gaussian.
  int beyond = 0;
  for (double v : x) beyond += std::fabs(v) > 4;
  const double p = 0.04550026;
  EXPECT_NEAR(beyond / static_cast<double>(n), p,
              5 * std::sqrt(p * (1 - p) / n));
  EXPECT_FALSE(noise.Add(x, -1).ok());
}

// P(X = 0) of the discrete Gaussian with variance parameter s2: 1 / sum_k
// exp(-k^2 / (2 s2)), from the definition (Canonne et al. 2020, Def. 1).
double DiscreteGaussianMassAtZero(double s2) {
  double total = 0;
  for (int k = -2000; k <= 2000; ++k) total += std::exp(-k * k / (2 * s2));
  return 1 / total;
}

TEST(DpNoiseTest, DiscreteGaussianMomentsAndMassMatch) {
  for (double sigma : {0.7, 3.0, 40.0}) {
    absl::StatusOr<DiscreteGaussian> sampler = DiscreteGaussian::Create(sigma);
    ASSERT_TRUE(sampler.ok()) << sampler.status();
    const int n = 100000;
    std::vector<int64_t> x(n);
    ASSERT_TRUE(sampler->Sample(x).ok());
    double mean = 0;
    int zeros = 0;
    for (int64_t v : x) {
      mean += v;
      zeros += v == 0;
    }
    mean /= n;
    double var = 0;
    for (int64_t v : x) var += (v - mean) * (v - mean);
    var /= n - 1;
    // For sigma >= 0.7 the variance of N_Z(0, s^2) is within 1e-3 of s^2
    // (Canonne et al. 2020, Fact 18: it is < s^2 and > s^2 (1 - 4 pi^2 s^2
    // / (e^{4 pi^2 s^2} - 1))); we compare with the exact series instead.
    double z = 0, second = 0;
    for (int k = -20000; k <= 20000; ++k) {
      const double w =
          std::exp(-static_cast<double>(k) * k / (2 * sigma * sigma));
      z += w;
      second += w * k * k;
    }
    const double true_var = second / z;
    EXPECT_NEAR(mean, 0, 5 * std::sqrt(true_var / n)) << "sigma " << sigma;
    EXPECT_NEAR(var, true_var, 5 * true_var * std::sqrt(2.0 / n))
        << "sigma " << sigma;
    const double p0 = DiscreteGaussianMassAtZero(sigma * sigma);
    EXPECT_NEAR(zeros / static_cast<double>(n), p0,
                5 * std::sqrt(p0 * (1 - p0) / n))
        << "sigma " << sigma;
  }
}

TEST(DpNoiseTest, DiscreteGaussianLargeSigmaAndBadInput) {
  // The scales distributed DP uses (per-client sigma in quantisation
  // levels is ~1e5 to 1e8).
  for (double sigma : {1e5, 6.7e7}) {
    absl::StatusOr<DiscreteGaussian> big = DiscreteGaussian::Create(sigma);
    ASSERT_TRUE(big.ok());
    EXPECT_NEAR(big->variance(), sigma * sigma, 1);  // rounded up to an integer
    const int n = 20000;
    std::vector<int64_t> x(n);
    ASSERT_TRUE(big->Sample(x).ok());
    double second = 0;
    for (int64_t v : x) second += static_cast<double>(v) * v;
    const double s2 = sigma * sigma;
    EXPECT_NEAR(second / n, s2, 5 * s2 * std::sqrt(2.0 / n)) << sigma;
  }
  EXPECT_FALSE(DiscreteGaussian::Create(0).ok());
  EXPECT_FALSE(DiscreteGaussian::Create(-1).ok());
  EXPECT_FALSE(DiscreteGaussian::Create(6.8e7).ok());
}

TEST(DpNoiseTest, AdaptiveClipFollowsTheGeometricRule) {
  // Without count noise the rule is deterministic: C * exp(-eta (b - gamma)).
  AdaptiveClipOptions options;
  options.initial_clip = 1.0;
  options.target_quantile = 0.5;
  options.learning_rate = 0.2;
  absl::StatusOr<AdaptiveClip> clip = AdaptiveClip::Create(options);
  ASSERT_TRUE(clip.ok());
  GaussianNoise noise;
  // All 10 clients under the bound: b = 1, C = exp(-0.2 * 0.5) = 0.904837418.
  ASSERT_TRUE(clip->Update(10, 10, noise).ok());
  EXPECT_NEAR(clip->clip(), 0.904837418, 1e-9);
  // None under: b = 0, C = 0.904837418 * exp(0.1) = 1.
  ASSERT_TRUE(clip->Update(0, 10, noise).ok());
  EXPECT_NEAR(clip->clip(), 1.0, 1e-9);
  EXPECT_FALSE(clip->Update(-1, 10, noise).ok());
  options.target_quantile = 1.5;
  EXPECT_THAT(AdaptiveClip::Create(options).status().message(),
              HasSubstr("target quantile"));
}

TEST(DpNoiseTest, AdaptiveClipConvergesToTheQuantile) {
  // Norms uniform on [0, 1): the median is 0.5. With 100 clients a round
  // and count noise 5 (Andrew et al.'s m / 20), C settles near 0.5.
  AdaptiveClipOptions options;
  options.initial_clip = 0.05;
  options.count_noise_stddev = 5;
  absl::StatusOr<AdaptiveClip> clip = AdaptiveClip::Create(options);
  ASSERT_TRUE(clip.ok());
  GaussianNoise noise;
  for (int round = 0; round < 300; ++round) {
    // The norms are 0.005, 0.015, ..., 0.995: a count below C is 100 C.
    const double count = std::min(100.0, std::floor(100 * clip->clip() + 0.5));
    ASSERT_TRUE(clip->Update(count, 100, noise).ok());
  }
  EXPECT_NEAR(clip->clip(), 0.5, 0.1);
}

TEST(DpNoiseTest, UpdateNoiseMultiplierSplitsTheBudget) {
  // By hand: z = 1, sigma_b = 5: z_update = (1 - 1/100)^-1/2 = 1.005037815.
  EXPECT_NEAR(*UpdateNoiseMultiplier(1.0, 5.0), 1.005037815, 1e-9);
  EXPECT_DOUBLE_EQ(*UpdateNoiseMultiplier(1.3, 0.0), 1.3);
  EXPECT_THAT(UpdateNoiseMultiplier(2.0, 0.5).status().message(),
              HasSubstr("count noise"));
}

TEST(DpFedAvgServerTest, ValidationNamesTheOption) {
  DpConfig config;
  config.mode = DpMode::kCentral;
  config.noise_multiplier = -1;
  EXPECT_THAT(config.Validate().message(), HasSubstr("dp_noise_multiplier"));
  config.noise_multiplier = 1;
  config.clip_norm = 0;
  EXPECT_THAT(config.Validate().message(), HasSubstr("dp_clip_norm"));
  config.clip_norm = 1;
  config.delta = 1;
  EXPECT_THAT(config.Validate().message(), HasSubstr("dp_delta"));
  config.delta = 1e-5;
  EXPECT_TRUE(config.Validate().ok());
  EXPECT_THAT(ParseDpMode("local").status().message(), HasSubstr("local"));
  // q = 20 / 10 is no sampling rate.
  EXPECT_FALSE(DpFedAvgServer::Create(config, 10, 20).ok());
  // Adaptive clipping with 10 clients: sigma_b = 10 / 20 = 0.5, and 2 * 0.5
  // is not above z = 1, so the count would spend the whole budget.
  config.adaptive_clip = true;
  EXPECT_THAT(DpFedAvgServer::Create(config, 100, 10).status().message(),
              HasSubstr("dp_adaptive_clip"));
}

TEST(DpFedAvgServerTest, RoundsComposeIntoTheAccountant) {
  DpConfig config;
  config.mode = DpMode::kCentral;
  config.noise_multiplier = 1.0;
  config.clip_norm = 0.5;
  absl::StatusOr<std::unique_ptr<DpFedAvgServer>> server =
      DpFedAvgServer::Create(config, 100, 10);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_DOUBLE_EQ((*server)->sampling_rate(), 0.1);
  EXPECT_DOUBLE_EQ((*server)->noise_stddev(), 0.5);
  EXPECT_EQ((*server)->spent().epsilon, 0);
  for (int r = 0; r < 50; ++r) ASSERT_TRUE((*server)->FinishRound(7).ok());
  EXPECT_NEAR((*server)->spent().epsilon,
              ComputeEpsilon(0.1, 1.0, 50, 1e-5)->epsilon, 1e-9);
  // Central noise on a zero sum has the configured spread.
  std::vector<double> sum(100000, 0.0);
  ASSERT_TRUE((*server)->AddCentralNoise(sum).ok());
  double second = 0;
  for (double v : sum) second += v * v;
  EXPECT_NEAR(second / sum.size(), 0.25,
              5 * 0.25 * std::sqrt(2.0 / sum.size()));
}

TEST(DpFedAvgServerTest, AdaptiveClippingRaisesTheUpdateNoise) {
  DpConfig config;
  config.mode = DpMode::kCentral;
  config.noise_multiplier = 1.0;
  config.adaptive_clip = true;
  config.clip_norm = 0.1;
  absl::StatusOr<std::unique_ptr<DpFedAvgServer>> server =
      DpFedAvgServer::Create(config, 1000, 100);
  ASSERT_TRUE(server.ok()) << server.status();
  // sigma_b = 100 / 20 = 5: z_update = (1 - 1/100)^-1/2 = 1.005037815.
  EXPECT_NEAR((*server)->update_noise_multiplier(), 1.005037815, 1e-9);
  // Every client within the bound: C shrinks (b ~= 1 > gamma = 0.5).
  for (int r = 0; r < 20; ++r) ASSERT_TRUE((*server)->FinishRound(100).ok());
  EXPECT_LT((*server)->clip_norm(), 0.1);
}

}  // namespace
}  // namespace samverka::security::dp
