// Tests of the RDP accountant against published values. Every expected
// number below comes from the cited source, or is computed by hand in the
// comment; none was produced by this code. tests/security/
// dp_rdp_integration.py additionally checks `samverka privacy` against a
// direct numerical integration of the Rényi divergence (ctest
// dp_rdp_integration).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "security/dp/accountant.h"

namespace samverka::security::dp {
namespace {

using ::testing::HasSubstr;

// The order list of TF Privacy's compute_dp_sgd_privacy_lib.py (2021-22):
// [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5] + range(5, 64) + [128, 256,
// 512].
std::vector<double> TfPrivacyOrders() {
  std::vector<double> orders = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a < 64; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0}) orders.push_back(a);
  return orders;
}

// Opacus' RDPAccountant.DEFAULT_ALPHAS, which TF Privacy's tutorial used too:
// [1 + x / 10 for x in range(1, 100)] + range(12, 64).
std::vector<double> OpacusOrders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

PrivacySpent Spent(const std::vector<double>& orders, double q, double sigma,
                   int64_t steps, double delta, Conversion conversion) {
  RdpAccountant accountant(orders);
  EXPECT_TRUE(accountant.Compose(q, sigma, steps).ok());
  absl::StatusOr<PrivacySpent> spent = accountant.Spent(delta, conversion);
  EXPECT_TRUE(spent.ok()) << spent.status();
  return spent.value_or(PrivacySpent{});
}

TEST(DpAccountantTest, FullBatchIsTheGaussianMechanism) {
  // Without sampling the RDP of the Gaussian mechanism is alpha / (2 sigma^2)
  // (Mironov 2017, Proposition 7). TF Privacy's test_compute_rdp_no_sampling:
  // q = 1, sigma = 10, order 20 -> 0.1.
  EXPECT_DOUBLE_EQ(*SampledGaussianRdp(1.0, 10.0, 20), 0.1);
  // By hand: 5.5 / (2 * 4) = 0.6875.
  EXPECT_DOUBLE_EQ(*SampledGaussianRdp(1.0, 2.0, 5.5), 0.6875);
}

TEST(DpAccountantTest, MatchesTfPrivacyScalar) {
  // TF Privacy rdp_accountant_test.py, test_compute_rdp_scalar:
  // compute_rdp(q=0.1, sigma=2, steps=10, order=5) == 0.07737 (places=5).
  EXPECT_NEAR(10 * *SampledGaussianRdp(0.1, 2.0, 5), 0.07737, 5e-6);
}

TEST(DpAccountantTest, MatchesTfPrivacySequenceIntegerAndFractionalOrders) {
  // TF Privacy rdp_accountant_test.py, test_compute_rdp_sequence:
  // compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100]) with delta=1e-5.
  const std::vector<double> orders = {1.5, 2.5, 5, 50, 100};
  const std::vector<double> expected = {0.00065, 0.001085, 0.00218075, 0.023846,
                                        167.416307};
  for (size_t k = 0; k < orders.size(); ++k) {
    EXPECT_NEAR(50 * *SampledGaussianRdp(0.01, 2.5, orders[k]), expected[k],
                1e-5)
        << "order " << orders[k];
  }
}

TEST(DpAccountantTest, ConversionsOfConstantRdp) {
  // TF Privacy rdp_accountant_test.py,
  // test_get_privacy_spent_check_target_delta: RDP 1.1 at orders 2..32, delta
  // 1e-5 -> eps 1.32783806176 at order 32 (the Balle et al. conversion TF
  // Privacy adopted in 2020).
  std::vector<double> orders;
  for (int a = 2; a <= 32; ++a) orders.push_back(a);
  const std::vector<double> rdp(orders.size(), 1.1);
  absl::StatusOr<PrivacySpent> balle =
      EpsilonFromRdp(orders, rdp, 1e-5, Conversion::kBalle2020);
  ASSERT_TRUE(balle.ok());
  EXPECT_NEAR(balle->epsilon, 1.32783806176, 1e-9);
  EXPECT_EQ(balle->order, 32);
  // Classic, by hand: 1.1 + ln(1e5) / 31 = 1.1 + 11.512925465 / 31
  // = 1.471384692.
  absl::StatusOr<PrivacySpent> classic =
      EpsilonFromRdp(orders, rdp, 1e-5, Conversion::kClassic);
  ASSERT_TRUE(classic.ok());
  EXPECT_NEAR(classic->epsilon, 1.471384692, 1e-8);
}

TEST(DpAccountantTest, HeterogeneousCompositionMatchesTfPrivacy) {
  // TF Privacy rdp_accountant_test.py, test_check_composition: 40000 steps
  // of (q=1e-4, sigma=0.4) then 100 of (q=0.1, sigma=2), delta 1e-5; the old
  // (classic) conversion gave eps 8.509656 at order 2.5, and the newer one
  // must not exceed it.
  const std::vector<double> orders = {1.25, 1.5, 1.75, 2.,  2.5, 3.,  4.,
                                      5.,   6.,  7.,   8.,  10., 12., 14.,
                                      16.,  20., 24.,  28., 32., 64., 256.};
  RdpAccountant accountant(orders);
  ASSERT_TRUE(accountant.Compose(1e-4, 0.4, 40000).ok());
  ASSERT_TRUE(accountant.Compose(0.1, 2.0, 100).ok());
  PrivacySpent classic = *accountant.Spent(1e-5, Conversion::kClassic);
  EXPECT_NEAR(classic.epsilon, 8.509656, 1e-5);
  EXPECT_EQ(classic.order, 2.5);
  EXPECT_LE(accountant.Spent(1e-5, Conversion::kBalle2020)->epsilon, 8.509656);
}

TEST(DpAccountantTest, MatchesTfPrivacyDpSgdStatements) {
  // TF Privacy compute_dp_sgd_privacy_test.py, test_compute_dp_sgd_privacy
  // (N, batch, sigma, epochs, delta -> eps, order), with q = batch / N and
  // steps = ceil(epochs * N / batch):
  // ('Test0', 60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19.0)
  // ('Test1', 100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13.0)
  PrivacySpent t0 = Spent(TfPrivacyOrders(), 150.0 / 60000, 1.3, 6000, 1e-5,
                          Conversion::kBalle2020);
  EXPECT_NEAR(t0.epsilon, 0.7242234026109595, 1e-6);
  EXPECT_EQ(t0.order, 19);
  PrivacySpent t1 = Spent(TfPrivacyOrders(), 100.0 / 100000, 1.0, 30000, 1e-7,
                          Conversion::kBalle2020);
  EXPECT_NEAR(t1.epsilon, 1.4154988495444842, 1e-6);
  EXPECT_EQ(t1.order, 13);
}

TEST(DpAccountantTest, MatchesTfPrivacyMnistTutorial) {
  // TF Privacy tutorials/README.md: compute_dp_sgd_privacy.py --N=60000
  // --batch_size=256 --noise_multiplier=1.1 --epochs=60 --delta=1e-5 gives
  // "eps = 3.01", and compute_dp_sgd_privacy.py's docstring gives 2.92 for
  // noise_multiplier=1.12; both with the classic conversion of the time and
  // the orders [1 + x/10 for x in 1..99] + range(12, 64). Steps =
  // ceil(60 * 60000 / 256) = 14063. Published to 3 digits: within 1%.
  const double q = 256.0 / 60000;
  EXPECT_NEAR(
      Spent(OpacusOrders(), q, 1.1, 14063, 1e-5, Conversion::kClassic).epsilon,
      3.01, 0.0301);
  EXPECT_NEAR(
      Spent(OpacusOrders(), q, 1.12, 14063, 1e-5, Conversion::kClassic).epsilon,
      2.92, 0.0292);
}

TEST(DpAccountantTest, MatchesOpacusAccountantTest) {
  // Opacus tests/accountants_test.py, test_rdp_accountant: sigma 1.5, sample
  // rate 0.04, int(90 / 0.04) = 2250 steps, delta 1e-5 -> 7.32911117143
  // (DEFAULT_ALPHAS, Balle et al. conversion).
  EXPECT_NEAR(
      Spent(OpacusOrders(), 0.04, 1.5, 2250, 1e-5, Conversion::kBalle2020)
          .epsilon,
      7.32911117143, 1e-6);
  // With our default orders (a superset) the bound can only be as tight or
  // tighter.
  absl::StatusOr<PrivacySpent> ours = ComputeEpsilon(0.04, 1.5, 2250, 1e-5);
  ASSERT_TRUE(ours.ok());
  EXPECT_LE(ours->epsilon, 7.32911117143 + 1e-9);
  EXPECT_NEAR(ours->epsilon, 7.32911117143, 0.01 * 7.33);
}

TEST(DpAccountantTest, NoiseForTargetEpsilonMatchesOpacus) {
  // Opacus tests/accountants_test.py, test_get_noise_multiplier: target eps 8,
  // delta 1e-5, sample rate 0.04, 90 epochs (2250 steps) -> 1.425307617,
  // found by a bisection that stops when the bracket is narrower than 0.01.
  absl::StatusOr<double> sigma = SmallestNoiseMultiplier(0.04, 2250, 1e-5, 8.0);
  ASSERT_TRUE(sigma.ok()) << sigma.status();
  EXPECT_NEAR(*sigma, 1.425307617, 0.01);
  // The answer meets the target, and 1% less noise does not.
  EXPECT_LE(ComputeEpsilon(0.04, *sigma, 2250, 1e-5)->epsilon, 8.0);
  EXPECT_GT(ComputeEpsilon(0.04, *sigma * 0.99, 2250, 1e-5)->epsilon, 8.0);
}

TEST(DpAccountantTest, EpsilonGrowsWithRoundsAndFallsWithNoise) {
  const double e50 = ComputeEpsilon(0.1, 1.0, 50, 1e-5)->epsilon;
  EXPECT_LT(e50, ComputeEpsilon(0.1, 1.0, 100, 1e-5)->epsilon);
  EXPECT_GT(e50, ComputeEpsilon(0.1, 2.0, 50, 1e-5)->epsilon);
  EXPECT_LE(e50,
            ComputeEpsilon(0.1, 1.0, 50, 1e-5, Conversion::kClassic)->epsilon);
  // Composing round by round equals composing all rounds at once.
  RdpAccountant by_round;
  for (int r = 0; r < 50; ++r) ASSERT_TRUE(by_round.Compose(0.1, 1.0).ok());
  EXPECT_NEAR(by_round.Spent(1e-5)->epsilon, e50, 1e-9 * e50);
  // Nothing composed yet: no privacy spent.
  EXPECT_EQ(RdpAccountant().Spent(1e-5)->epsilon, 0);
}

TEST(DpAccountantTest, RejectsBadParametersNamingThem) {
  EXPECT_THAT(ComputeEpsilon(0, 1, 10, 1e-5).status().message(),
              HasSubstr("sampling rate"));
  EXPECT_THAT(ComputeEpsilon(1.5, 1, 10, 1e-5).status().message(),
              HasSubstr("sampling rate"));
  EXPECT_THAT(ComputeEpsilon(0.1, -1, 10, 1e-5).status().message(),
              HasSubstr("noise multiplier"));
  EXPECT_THAT(ComputeEpsilon(0.1, 0, 10, 1e-5).status().message(),
              HasSubstr("noise multiplier"));
  EXPECT_THAT(ComputeEpsilon(0.1, 1, 0, 1e-5).status().message(),
              HasSubstr("rounds"));
  EXPECT_THAT(ComputeEpsilon(0.1, 1, 10, 1).status().message(),
              HasSubstr("delta"));
  EXPECT_THAT(ComputeEpsilon(0.1, 1, 10, 0).status().message(),
              HasSubstr("delta"));
  EXPECT_THAT(SmallestNoiseMultiplier(0.1, 10, 1e-5, -2).status().message(),
              HasSubstr("target epsilon"));
  EXPECT_EQ(SmallestNoiseMultiplier(0.1, 10, 1e-5, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SmallestNoiseMultiplier(1.0, 100000, 1e-10, 1e-6).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(SampledGaussianRdp(0.1, 1, 1.0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka::security::dp
