// Checks every task metric and the Cox loss against tools no one here
// wrote: scikit-learn 1.2 (Debian's python3-sklearn) and R's survival 3.5
// (r-base-core, r-cran-survival), on fixed random data the test writes.
#include "models/tasks/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/tasks/losses.h"
#include "tests/models/tool_runner.h"

namespace samverka::models {
namespace {

using testing_tools::HaveRSurvival;
using testing_tools::HaveSklearn;
using testing_tools::ParseNamedValues;
using testing_tools::WriteText;

constexpr char kNoSklearn[] =
    "scikit-learn is not installed for /usr/bin/python3 (Debian package python3-sklearn; "
    "scripts/install-deps installs it)";
constexpr char kNoR[] =
    "R's survival package is not installed (Debian packages r-base-core and r-cran-survival; "
    "scripts/install-deps installs them)";

std::string Join(const std::vector<float>& values, int width, int row) {
  std::string out;
  for (int j = 0; j < width; ++j) {
    absl::StrAppend(&out, j ? "," : "", absl::StrFormat("%.17g", static_cast<double>(values[row * width + j])));
  }
  return out;
}

// Writes "a0,a1,...,b0,..." rows with the given header.
void WriteCsv(const std::filesystem::path& path, const std::string& header,
              const std::vector<std::vector<float>>& blocks, const std::vector<int>& widths,
              int rows) {
  std::string text = header + "\n";
  for (int i = 0; i < rows; ++i) {
    for (size_t b = 0; b < blocks.size(); ++b) {
      absl::StrAppend(&text, b ? "," : "", Join(blocks[b], widths[b], i));
    }
    text += "\n";
  }
  WriteText(path, text);
}

std::map<std::string, double> RunPython(const std::filesystem::path& dir, const std::string& body) {
  WriteText(dir / "check.py", "import warnings\nwarnings.simplefilter('ignore')\n"
                              "import numpy as np\nfrom sklearn import metrics as m\n" + body);
  CommandResult r = RunCommand("cd " + dir.string() + " && /usr/bin/python3 check.py");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return ParseNamedValues(r.output);
}

std::map<std::string, double> RunR(const std::filesystem::path& dir, const std::string& body) {
  WriteText(dir / "check.R", "suppressMessages(library(survival))\n" + body);
  CommandResult r = RunCommand("cd " + dir.string() + " && Rscript check.R");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return ParseNamedValues(r.output);
}

TEST(TaskMetricsTest, ClassificationMatchesScikitLearn) {
  if (!HaveSklearn()) GTEST_SKIP() << kNoSklearn;
  const auto dir = FreshTestDir("samverka_metrics_");
  // Four classes, one of them (3) never true, so sklearn's rules for absent
  // classes are exercised; predictions right 60% of the time.
  constexpr int kN = 300, kK = 4;
  std::mt19937_64 rng(7);
  std::vector<float> truth, predicted;
  std::vector<int64_t> confusion(kK * kK, 0);
  for (int i = 0; i < kN; ++i) {
    const int y = static_cast<int>(rng() % 3);
    const int p = (rng() % 10 < 6) ? y : static_cast<int>(rng() % kK);
    truth.push_back(y);
    predicted.push_back(p);
    confusion[y * kK + p] += 1;
  }
  WriteCsv(dir / "data.csv", "y,p", {truth, predicted}, {1, 1}, kN);
  const auto ref = RunPython(dir, R"(
d = np.loadtxt("data.csv", delimiter=",", skiprows=1)
y, p = d[:, 0].astype(int), d[:, 1].astype(int)
print("accuracy", m.accuracy_score(y, p))
print("balanced_accuracy", m.balanced_accuracy_score(y, p))
print("macro_f1", m.f1_score(y, p, average="macro"))
)");
  ASSERT_EQ(ref.size(), 3u);
  int64_t correct = 0;
  for (int c = 0; c < kK; ++c) correct += confusion[c * kK + c];
  EXPECT_NEAR(static_cast<double>(correct) / kN, ref.at("accuracy"), 1e-12);
  EXPECT_NEAR(BalancedAccuracy(confusion, kK), ref.at("balanced_accuracy"), 1e-12);
  EXPECT_NEAR(MacroF1(confusion, kK), ref.at("macro_f1"), 1e-12);
  std::printf("sklearn balanced_accuracy %.12f macro_f1 %.12f; ours %.12f %.12f\n",
              ref.at("balanced_accuracy"), ref.at("macro_f1"), BalancedAccuracy(confusion, kK),
              MacroF1(confusion, kK));
}

TEST(TaskMetricsTest, RegressionMatchesScikitLearn) {
  if (!HaveSklearn()) GTEST_SKIP() << kNoSklearn;
  const auto dir = FreshTestDir("samverka_metrics_");
  constexpr int kN = 200, kT = 3;
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> y, p;
  for (int i = 0; i < kN; ++i) {
    for (int t = 0; t < kT; ++t) {
      const float value = 10.0f * t + (t + 1) * normal(rng);
      y.push_back(value);
      p.push_back(value + (0.5f + t) * normal(rng));
    }
  }
  WriteCsv(dir / "data.csv", "y0,y1,y2,p0,p1,p2", {y, p}, {kT, kT}, kN);
  const auto ref = RunPython(dir, R"(
d = np.loadtxt("data.csv", delimiter=",", skiprows=1, dtype=np.float64)
y, p = d[:, :3], d[:, 3:]
print("mse", m.mean_squared_error(y, p))
print("rmse", m.mean_squared_error(y, p, squared=False))
print("mae", m.mean_absolute_error(y, p))
print("r2", m.r2_score(y, p))
)");
  ASSERT_EQ(ref.size(), 4u);
  const RegressionMetrics ours = ComputeRegressionMetrics(p, y, kT);
  EXPECT_NEAR(ours.mse, ref.at("mse"), 1e-9 * ref.at("mse"));
  EXPECT_NEAR(ours.rmse, ref.at("rmse"), 1e-9 * ref.at("rmse"));
  EXPECT_NEAR(ours.mae, ref.at("mae"), 1e-9 * ref.at("mae"));
  EXPECT_NEAR(ours.r2, ref.at("r2"), 1e-9);
  std::printf("sklearn mse %.10g rmse %.10g mae %.10g r2 %.10g\nours    mse %.10g rmse %.10g "
              "mae %.10g r2 %.10g\n", ref.at("mse"), ref.at("rmse"), ref.at("mae"), ref.at("r2"),
              ours.mse, ours.rmse, ours.mae, ours.r2);
}

TEST(TaskMetricsTest, BinaryAndMultilabelMatchScikitLearn) {
  if (!HaveSklearn()) GTEST_SKIP() << kNoSklearn;
  const auto dir = FreshTestDir("samverka_metrics_");
  // Three labels, one rare; scores rounded to 0.05 so ties occur.
  constexpr int kN = 250, kL = 3;
  const float prevalence[kL] = {0.5f, 0.3f, 0.06f};
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::vector<float> y, p;
  for (int i = 0; i < kN; ++i) {
    for (int l = 0; l < kL; ++l) {
      const float label = uniform(rng) < prevalence[l] ? 1.0f : 0.0f;
      const float score = std::clamp(0.5f * label + 0.7f * uniform(rng) - 0.1f, 0.0f, 1.0f);
      y.push_back(label);
      p.push_back(std::round(score * 20) / 20);
    }
  }
  WriteCsv(dir / "data.csv", "y0,y1,y2,p0,p1,p2", {y, p}, {kL, kL}, kN);
  const auto ref = RunPython(dir, R"(
d = np.loadtxt("data.csv", delimiter=",", skiprows=1, dtype=np.float32)
y, p = d[:, :3].astype(int), d[:, 3:]
for l, a in enumerate(m.roc_auc_score(y, p, average=None)):
    print("auc_%d" % l, a)
print("micro_f1", m.f1_score(y, p >= 0.5, average="micro"))
print("macro_f1", m.f1_score(y, p >= 0.5, average="macro"))
)");
  ASSERT_EQ(ref.size(), 5u);
  const MultilabelMetrics ours = ComputeMultilabelMetrics(p, y, kL);
  for (int l = 0; l < kL; ++l) {
    ASSERT_TRUE(ours.auc[l].has_value());
    EXPECT_NEAR(*ours.auc[l], ref.at(absl::StrCat("auc_", l)), 1e-12) << "label " << l;
  }
  EXPECT_NEAR(ours.micro_f1, ref.at("micro_f1"), 1e-12);
  EXPECT_NEAR(ours.macro_f1, ref.at("macro_f1"), 1e-12);
  std::printf("sklearn auc %.10f %.10f %.10f micro_f1 %.10f macro_f1 %.10f\n", ref.at("auc_0"),
              ref.at("auc_1"), ref.at("auc_2"), ref.at("micro_f1"), ref.at("macro_f1"));
}

// Survival data with tied times and tied risks: integer times 1..25, about
// 60% events, two covariates that raise the hazard.
struct SurvivalData {
  std::vector<float> x, time, event, risk;
};

SurvivalData MakeSurvival(int n) {
  SurvivalData d;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> uniform(0, 1);
  for (int i = 0; i < n; ++i) {
    const float x1 = normal(rng), x2 = uniform(rng) < 0.4f ? 1.0f : 0.0f;
    const float hazard = std::exp(0.8f * x1 + 0.6f * x2);
    const float t = -std::log(uniform(rng)) / hazard * 8.0f;
    d.x.push_back(x1);
    d.x.push_back(x2);
    d.time.push_back(std::min(25.0f, std::ceil(t)));
    d.event.push_back(uniform(rng) < 0.6f && t < 25 ? 1.0f : 0.0f);
    d.risk.push_back(std::round((0.7f * x1 + 0.5f * x2 + 0.3f * normal(rng)) * 4) / 4);
  }
  return d;
}

TEST(TaskMetricsTest, ConcordanceMatchesRSurvival) {
  if (!HaveRSurvival()) GTEST_SKIP() << kNoR;
  const auto dir = FreshTestDir("samverka_metrics_");
  constexpr int kN = 300;
  const SurvivalData d = MakeSurvival(kN);
  WriteCsv(dir / "data.csv", "time,event,risk", {d.time, d.event, d.risk}, {1, 1, 1}, kN);
  const auto ref = RunR(dir, R"(
d <- read.csv("data.csv")
cat("c_index", sprintf("%.15g", concordance(Surv(time, event) ~ risk, data = d, reverse = TRUE)$concordance), "\n")
)");
  ASSERT_EQ(ref.size(), 1u);
  const std::optional<double> ours = HarrellConcordance(d.risk, d.time, d.event);
  ASSERT_TRUE(ours.has_value());
  EXPECT_NEAR(*ours, ref.at("c_index"), 1e-12);
  std::printf("R concordance %.12f; ours %.12f\n", ref.at("c_index"), *ours);
}

TEST(TaskMetricsTest, CoxPartialLikelihoodMatchesRCoxphBreslow) {
  if (!HaveRSurvival()) GTEST_SKIP() << kNoR;
  const auto dir = FreshTestDir("samverka_metrics_");
  constexpr int kN = 300;
  const SurvivalData d = MakeSurvival(kN);
  WriteCsv(dir / "data.csv", "x1,x2,time,event", {d.x, d.time, d.event}, {2, 1, 1}, kN);
  const auto ref = RunR(dir, R"(
d <- read.csv("data.csv")
fit <- coxph(Surv(time, event) ~ x1 + x2, data = d, ties = "breslow")
f <- function(name, v) cat(name, sprintf("%.15g", v), "\n")
f("beta1", coef(fit)[1]); f("beta2", coef(fit)[2])
f("loglik0", fit$loglik[1]); f("loglik", fit$loglik[2])
)");
  ASSERT_EQ(ref.size(), 4u);
  std::vector<double> fitted, zero(kN, 0.0);
  for (int i = 0; i < kN; ++i) {
    fitted.push_back(ref.at("beta1") * d.x[2 * i] + ref.at("beta2") * d.x[2 * i + 1]);
  }
  // R centres the covariates; the partial likelihood does not change.
  const double ours = CoxLogPartialLikelihood(fitted, d.time, d.event);
  const double torch_loss = TorchCoxLogPartialLikelihood(fitted, d.time, d.event);
  EXPECT_NEAR(ours, ref.at("loglik"), 1e-8 * std::abs(ref.at("loglik")));
  EXPECT_NEAR(torch_loss, ref.at("loglik"), 1e-8 * std::abs(ref.at("loglik")));
  EXPECT_NEAR(CoxLogPartialLikelihood(zero, d.time, d.event), ref.at("loglik0"),
              1e-8 * std::abs(ref.at("loglik0")));
  EXPECT_NEAR(TorchCoxLogPartialLikelihood(zero, d.time, d.event), ref.at("loglik0"),
              1e-8 * std::abs(ref.at("loglik0")));
  std::printf("R coxph loglik %.10f (at 0: %.10f); ours %.10f, torch loss %.10f\n",
              ref.at("loglik"), ref.at("loglik0"), ours, torch_loss);
}

TEST(TaskMetricsTest, EdgeCases) {
  EXPECT_EQ(HarrellConcordance(std::vector<float>{1, 2}, std::vector<float>{1, 2},
                               std::vector<float>{0, 0}),
            std::nullopt);
  EXPECT_EQ(BalancedAccuracy(std::vector<int64_t>(4, 0), 2), 0);
  // A constant target predicted exactly scores R^2 1, otherwise 0.
  EXPECT_EQ(ComputeRegressionMetrics(std::vector<float>{2, 2}, std::vector<float>{2, 2}, 1).r2, 1);
  EXPECT_EQ(ComputeRegressionMetrics(std::vector<float>{1, 2}, std::vector<float>{2, 2}, 1).r2, 0);
  EXPECT_EQ(CoxLogPartialLikelihood(std::vector<double>{0.5}, std::vector<float>{3},
                                    std::vector<float>{0}),
            0);
}

}  // namespace
}  // namespace samverka::models
