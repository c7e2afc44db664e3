// client/study_check.h
#pragma once

#include <cstdint>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/site_policy.h"
#include "common/study_manifest.h"
#include "statistics/spec.h"
#include "common/task.h"
#include "security/pki.h"
#include "security/signed_study.h"

namespace samverka::client {

// A site's decisions about a study, before it reads any data (DESIGN.md, "A
// standing federation, many studies"): is the study what an operator of
// this federation signed, and does this site's own policy let it take part?
// Plain functions over plain types, so the daemon's gRPC code stays thin and
// every decision has a unit test (tests/client/study_check_test.cc).

// A study as the site fetched it from the coordinator (SignedStudy).
struct FetchedStudy {
  std::string study_id;
  security::StudyEnvelope envelope;
  uint64_t model_bytes = 0;
  // The signing operator's certificate (PEM) and its signature over
  // security::StudySigningBytes(envelope).
  std::string operator_certificate;
  std::string signature;
};

// What a site trusts a study by.
struct StudyTrust {
  // The federation CA (client.toml tls.ca_certificate).
  std::string ca_pem;
  // The CA's revocation list (tls.crl); null: none configured.
  const security::RevocationList* crl = nullptr;
  // The federation this site joined (its Register response).
  std::string federation_id;
  // Operator names (certificate CN) whose studies this site takes; empty:
  // any operator certificate of the federation CA.
  std::vector<std::string> allowed_operators;
};

// A study whose signature and signer checked out, with its parsed manifest.
struct VerifiedStudy {
  std::string study_id;
  std::string operator_name;
  StudyManifest manifest;
  // Lower-case hex SHA-256 of its TorchScript file; empty for a built-in.
  std::string model_sha256;
  uint64_t model_bytes = 0;
  // SHA-256 of the signed manifest: a statistics study's tasks name it in
  // place of a model, and the consent ledger allows one sum of it.
  std::string manifest_sha256;
  // A statistics study's [statistics] table.
  std::optional<statistics::StatisticsSpec> statistics;
};

// Checks, in this order: the id names these signed bytes, the envelope is
// for `trust.federation_id`, the signature verifies with a certificate that
// chains to the CA at `now`, is an operator's, is not revoked (an expired
// CRL counts as unknown status: refused) and is in allowed_operators; then
// parses the manifest and checks that its model agrees with the digest
// (a TorchScript model brings one, a built-in none). kUnauthenticated or
// kPermissionDenied (not an allowed operator) or kInvalidArgument (a
// malformed envelope or manifest); the message is the reason to log.
absl::StatusOr<VerifiedStudy> VerifyStudy(const FetchedStudy& study, const StudyTrust& trust,
                                          absl::Time now);

// The decision on one task of a verified study, before any data is read:
// the task must agree with the signed manifest (model; for training, the
// training options, rounds, secure aggregation and DP, which may only be
// stricter than signed), the site must hold the manifest's data set (one
// of `datasets`), and `policy` must allow it (allowed_models by name or
// digest, require_secure_aggregation, min_cohort, max_rounds_per_day,
// max_epsilon on that data set). Returns the task as it will run: model
// and training options from the manifest, the privacy cost charged at the
// signed noise multiplier if that is lower than the task's.
// kFailedPrecondition with the reason otherwise (never anything of data).
absl::StatusOr<ClientTask> DecideStudyTask(const ClientTask& task, const VerifiedStudy& study,
                                           const std::set<std::string>& datasets,
                                           const SitePolicyEnforcer& policy, absl::Time now);

// True if `policy` refuses every task of `study` whatever the round (its
// data set is not here, its model is not allowed, it lacks required secure
// aggregation), so the coordinator need not offer it again; false for
// refusals that depend on the round (cohort, rate, privacy budget). A
// statistics study has one task, so any refusal of it is of the whole study.
bool RefusesWholeStudy(const VerifiedStudy& study, const std::set<std::string>& datasets,
                       const SitePolicy& policy);

// "refused study 3f2a...: <reason>", the line a site logs and reports.
std::string StudyRefusal(const std::string& study_id, const absl::Status& why);

}  // namespace samverka::client
