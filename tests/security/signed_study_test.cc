// tests/security/signed_study_test.cc
#include "security/signed_study.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/security/study_pki.h"

namespace samverka::security {
namespace {

using ::testing::HasSubstr;
using testutil::SignFor;
using testutil::StudyPki;

constexpr char kManifest[] =
    "name = \"breast-mlp\"\ndataset = \"breast\"\nmodel = \"mlp\"\ninput_shape = [30]\n"
    "num_classes = 2\nrounds = 5\n";

std::string Message(const absl::Status& status) { return std::string(status.message()); }

absl::StatusOr<PeerIdentity> Verify(const StudyEnvelope& envelope, const std::string& signature,
                                    const StudyPki::Holder& signer, StudyPki& pki,
                                    const RevocationList* crl = nullptr) {
  return VerifyStudySignature(envelope, signature, signer.certificate_pem, pki.ca_pem(), crl,
                              absl::Now());
}

TEST(SignedStudyTest, AnOperatorsSignatureVerifiesAndNamesTheOperator) {
  StudyPki pki("consortium");
  StudyPki::Holder operator_cert = pki.Issue("alice");
  const StudyEnvelope envelope = NewStudyEnvelope("consortium", kManifest, "");
  absl::StatusOr<PeerIdentity> signer =
      Verify(envelope, SignFor(envelope, operator_cert), operator_cert, pki);
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(signer->name, "alice");
  EXPECT_EQ(signer->role, Role::kOperator);
  // The id names the signed bytes: 16 hex digits, and two envelopes of one
  // manifest (fresh nonces) are two studies.
  EXPECT_EQ(StudyId(envelope).size(), 16u);
  EXPECT_NE(StudyId(envelope), StudyId(NewStudyEnvelope("consortium", kManifest, "")));
}

TEST(SignedStudyTest, AnyChangeAfterSigningBreaksTheSignature) {
  StudyPki pki("consortium");
  StudyPki::Holder operator_cert = pki.Issue("alice");
  const StudyEnvelope envelope = NewStudyEnvelope("consortium", kManifest, std::string(64, 'a'));
  const std::string signature = SignFor(envelope, operator_cert);
  ASSERT_TRUE(Verify(envelope, signature, operator_cert, pki).ok());

  StudyEnvelope manifest = envelope;
  manifest.manifest += "lr = 10.0\n";
  StudyEnvelope digest = envelope;
  digest.model_sha256 = std::string(64, 'b');
  StudyEnvelope dropped_digest = envelope;
  dropped_digest.model_sha256.clear();
  StudyEnvelope time = envelope;
  time.submitted_unix_ms += 1;
  StudyEnvelope nonce = envelope;
  nonce.nonce[0] = nonce.nonce[0] == '0' ? '1' : '0';
  for (const StudyEnvelope* altered : {&manifest, &digest, &dropped_digest, &time, &nonce}) {
    absl::StatusOr<PeerIdentity> signer = Verify(*altered, signature, operator_cert, pki);
    ASSERT_FALSE(signer.ok());
    EXPECT_EQ(signer.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(Message(signer.status()), HasSubstr("does not verify"));
  }
  // A truncated or empty signature is the same refusal.
  EXPECT_EQ(Verify(envelope, signature.substr(0, 10), operator_cert, pki).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Verify(envelope, "", operator_cert, pki).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(SignedStudyTest, AStudyCannotMoveToAnotherFederation) {
  StudyPki pki("consortium");
  StudyPki::Holder operator_cert = pki.Issue("alice");
  // Signed for "other" by an operator of "consortium": the signer's
  // certificate (O=consortium) does not belong to that federation.
  const StudyEnvelope other = NewStudyEnvelope("other", kManifest, "");
  absl::StatusOr<PeerIdentity> signer =
      Verify(other, SignFor(other, operator_cert), operator_cert, pki);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(signer.status()), HasSubstr("belongs to federation 'consortium'"));
  // And a study signed for "consortium" relabelled for "other".
  StudyEnvelope moved = NewStudyEnvelope("consortium", kManifest, "");
  const std::string signature = SignFor(moved, operator_cert);
  moved.federation_id = "other";
  EXPECT_FALSE(Verify(moved, signature, operator_cert, pki).ok());
}

TEST(SignedStudyTest, ASiteOrCoordinatorCertificateCannotSignAStudy) {
  StudyPki pki("consortium");
  for (Role role : {Role::kClient, Role::kCoordinator}) {
    StudyPki::Holder holder = pki.Issue(role == Role::kClient ? "hospital-a" : "coordinator", role);
    const StudyEnvelope envelope = NewStudyEnvelope("consortium", kManifest, "");
    absl::StatusOr<PeerIdentity> signer =
        Verify(envelope, SignFor(envelope, holder), holder, pki);
    ASSERT_FALSE(signer.ok());
    EXPECT_EQ(signer.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(Message(signer.status()), HasSubstr("is not an operator's"));
  }
}

TEST(SignedStudyTest, ARevokedOperatorsStudiesAreRefused) {
  StudyPki pki("consortium");
  StudyPki::Holder operator_cert = pki.Issue("alice");
  const StudyEnvelope envelope = NewStudyEnvelope("consortium", kManifest, "");
  const std::string signature = SignFor(envelope, operator_cert);
  RevocationList before = pki.Crl();
  ASSERT_TRUE(Verify(envelope, signature, operator_cert, pki, &before).ok());
  ASSERT_TRUE(pki.ca().Revoke("alice").ok());
  RevocationList after = pki.Crl();
  absl::StatusOr<PeerIdentity> signer = Verify(envelope, signature, operator_cert, pki, &after);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Message(signer.status()), HasSubstr("revoked"));
}

TEST(SignedStudyTest, AnOperatorOfAnotherCaIsNotTrusted) {
  StudyPki pki("consortium", "ours");
  // Same federation name, same operator name, another CA.
  StudyPki rogue("consortium", "rogue");
  StudyPki::Holder impostor = rogue.Issue("alice");
  const StudyEnvelope envelope = NewStudyEnvelope("consortium", kManifest, "");
  absl::StatusOr<PeerIdentity> signer =
      Verify(envelope, SignFor(envelope, impostor), impostor, pki);
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(SignedStudyTest, MalformedEnvelopesAreNotSigned) {
  StudyPki pki("consortium");
  StudyPki::Holder operator_cert = pki.Issue("alice");
  StudyEnvelope bad_digest = NewStudyEnvelope("consortium", kManifest, "not-a-digest");
  EXPECT_EQ(SignStudy(bad_digest, *operator_cert.key).status().code(),
            absl::StatusCode::kInvalidArgument);
  StudyEnvelope bad_nonce = NewStudyEnvelope("consortium", kManifest, "");
  bad_nonce.nonce = "1234";
  EXPECT_EQ(SignStudy(bad_nonce, *operator_cert.key).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignStudy(NewStudyEnvelope("consortium", "", ""), *operator_cert.key).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The signature is plain ECDSA P-256 over SHA-256 of StudySigningBytes, so
// anyone can check a study with the openssl CLI and the operator's
// certificate, without Samverka.
TEST(SignedStudyTest, TheOpensslCommandLineVerifiesTheSignature) {
  StudyPki pki("consortium");
  StudyPki::Holder operator_cert = pki.Issue("alice");
  const StudyEnvelope envelope = NewStudyEnvelope("consortium", kManifest, std::string(64, 'c'));
  const std::string signature = SignFor(envelope, operator_cert);
  const std::string dir = pki.dir().string();
  std::ofstream(dir + "/signed.bin", std::ios::binary) << StudySigningBytes(envelope);
  std::ofstream(dir + "/signature.der", std::ios::binary) << signature;
  const auto run = [](const std::string& command) {
    std::string output;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return std::make_pair(-1, output);
    std::array<char, 4096> buffer;
    for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) output.append(buffer.data(), n);
    const int status = pclose(pipe);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, output);
  };
  auto [pubkey_code, pubkey_output] = run("openssl x509 -in '" + operator_cert.certificate_path +
                                          "' -pubkey -noout -out '" + dir + "/operator.pub'");
  ASSERT_EQ(pubkey_code, 0) << pubkey_output;
  const std::string verify = "openssl dgst -sha256 -verify '" + dir + "/operator.pub' -signature '" +
                             dir + "/signature.der' '" + dir + "/";
  auto [code, output] = run(verify + "signed.bin'");
  EXPECT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("Verified OK"));
  // The same bytes with one manifest byte changed do not verify.
  StudyEnvelope altered = envelope;
  altered.manifest[0] = 'N';
  std::ofstream(dir + "/altered.bin", std::ios::binary) << StudySigningBytes(altered);
  auto [altered_code, altered_output] = run(verify + "altered.bin'");
  EXPECT_NE(altered_code, 0) << altered_output;
  EXPECT_THAT(altered_output, HasSubstr("Verification failure"));
  // The study id is the first 16 hex digits of SHA-256 of the signed bytes.
  auto [sha_code, sha_output] = run("sha256sum '" + dir + "/signed.bin'");
  ASSERT_EQ(sha_code, 0) << sha_output;
  EXPECT_EQ(sha_output.substr(0, 16), StudyId(envelope));
}

}  // namespace
}  // namespace samverka::security
