// tests/common/task_test.cc
#include "common/task.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace samverka {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

FederationModel Logreg() { return {"logreg", {30}, 2, {}}; }

TEST(SiteOfferTest, ChecksWhatTheSiteStates) {
  EXPECT_TRUE(CheckSiteCanServe(Logreg(), {{30}, "", ""}).ok());
  EXPECT_TRUE(CheckSiteCanServe(Logreg(), {}).ok());  // an older client states nothing
  absl::Status wrong = CheckSiteCanServe(Logreg(), {{29}, "", ""});
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(wrong.message(), AllOf(HasSubstr("29 features"), HasSubstr("input_shape [30]")));
  const FederationModel scripted{"/etc/samverka/net.pt", {30}, 2, {}};
  EXPECT_TRUE(CheckSiteCanServe(scripted, {{30}, "net.pt", ""}).ok());
  EXPECT_THAT(CheckSiteCanServe(scripted, {{30}, "", ""}).message(),
              AllOf(HasSubstr("'net.pt'"), HasSubstr("no model_file")));
  EXPECT_THAT(CheckSiteCanServe(scripted, {{30}, "old.pt", ""}).message(), HasSubstr("'old.pt'"));
  EXPECT_THAT(CheckSiteCanServe(Logreg(), {{30}, "", "its labels are outside"}).message(),
              HasSubstr("its labels are outside"));
  EXPECT_EQ(CheckSiteCanServe(Logreg(), {{-1}, "", ""}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace samverka
