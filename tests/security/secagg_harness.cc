// tests/security/secagg_harness.cc
#include "tests/security/secagg_harness.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <utility>

#include "security/internal/openssl_util.h"
#include "security/secagg/encoding.h"
#include "security/signature.h"

namespace samverka::security::secagg::harness {
namespace {

using security::internal::BioPtr;
using security::internal::EvpPkeyPtr;
using security::internal::X509Ptr;

const absl::Time kNotBefore =
    absl::FromCivil(absl::CivilSecond(2020, 1, 1), absl::UTCTimeZone());
const absl::Time kNotAfter =
    absl::FromCivil(absl::CivilSecond(2040, 1, 1), absl::UTCTimeZone());

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "test PKI error: %s\n", what);
  std::abort();
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) Fail("X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `common_name`, signed by (issuer_cert,
// issuer_key), or self-signed when issuer_cert is null.
X509Ptr MakeCertificate(const std::string& common_name, EVP_PKEY* key,
                        X509* issuer_cert, EVP_PKEY* issuer_key, bool is_ca) {
  static long serial = 1;
  X509Ptr cert(X509_new());
  X509* c = cert.get();
  X509_set_version(c, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  ASN1_TIME_set(X509_getm_notBefore(c), absl::ToTimeT(kNotBefore));
  ASN1_TIME_set(X509_getm_notAfter(c), absl::ToTimeT(kNotAfter));
  X509_NAME_add_entry_by_txt(
      X509_get_subject_name(c), "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  if (issuer_cert == nullptr) {
    issuer_cert = c;
    issuer_key = key;
  }
  X509_set_issuer_name(c, X509_get_subject_name(issuer_cert));
  X509_set_pubkey(c, key);
  AddExtension(c, issuer_cert, NID_basic_constraints,
               is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExtension(
      c, issuer_cert, NID_key_usage,
      is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  AddExtension(c, issuer_cert, NID_subject_key_identifier, "hash");
  AddExtension(c, issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (X509_sign(c, issuer_key, nullptr) <= 0) Fail("X509_sign");
  return cert;
}

std::string CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) Fail("PEM_write_bio_X509");
  return BioContents(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    Fail("PEM_write_bio_PrivateKey");
  }
  return BioContents(bio.get());
}

EvpPkeyPtr NewEd25519Key() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (key == nullptr) Fail("EVP_PKEY_Q_keygen");
  return key;
}

constexpr int kMaxSites = 64;

}  // namespace

const absl::Time kCheckTime =
    absl::FromCivil(absl::CivilSecond(2030, 6, 1), absl::UTCTimeZone());

struct TestCa::State {
  EvpPkeyPtr key;
  X509Ptr cert;
};

TestCa::TestCa(const std::string& name) : state_(std::make_unique<State>()) {
  state_->key = NewEd25519Key();
  state_->cert = MakeCertificate(name, state_->key.get(), nullptr, nullptr,
                                 /*is_ca=*/true);
  pem_ = CertPem(state_->cert.get());
}

TestCa::~TestCa() = default;

TestIdentity TestCa::Issue(const std::string& common_name) const {
  EvpPkeyPtr key = NewEd25519Key();
  X509Ptr cert = MakeCertificate(common_name, key.get(), state_->cert.get(),
                                 state_->key.get(), /*is_ca=*/false);
  return TestIdentity{common_name, KeyPem(key.get()), CertPem(cert.get())};
}

const TestCa& FederationCa() {
  static const TestCa* const ca = new TestCa("samverka-test-federation-ca");
  return *ca;
}

const TestIdentity& Site(int index) {
  static const std::vector<TestIdentity>* const sites = [] {
    auto* out = new std::vector<TestIdentity>();
    for (int i = 0; i < kMaxSites; ++i) {
      out->push_back(FederationCa().Issue("site-" + std::to_string(i)));
    }
    return out;
  }();
  if (index < 0 || index >= kMaxSites) Fail("site index out of range");
  return (*sites)[index];
}

SimulatedRound::SimulatedRound(RoundConfig config, int num_clients,
                               std::string model_digest)
    : config_(std::move(config)),
      model_digest_(std::move(model_digest)),
      num_clients_(num_clients) {
  for (int i = 0; i < num_clients; ++i) ids_.push_back(100 + 7 * i);
}

void SimulatedRound::DropFraction(Stage stage, double fraction, uint32_t seed) {
  std::vector<ParticipantId> shuffled = ids_;
  std::mt19937 rng(seed);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const int count = static_cast<int>(fraction * num_clients_ + 1e-9);
  for (int i = 0; i < count; ++i) drops_[stage].insert(shuffled[i]);
}

void SimulatedRound::RecordClient(ParticipantId id, const absl::Status& s) {
  if (!s.ok()) client_errors.emplace(id, s);
}

void SimulatedRound::RecordServer(ParticipantId id, const absl::Status& s) {
  if (!s.ok()) server_errors.emplace(id, s);
}

void SimulatedRound::CreateParticipants() {
  ServerOptions server_options;
  server_options.config = config_;
  server_options.model_digest = model_digest_;
  server_options.ca_pem = FederationCa().pem();
  server_options.clock = [] { return kCheckTime; };
  std::shared_ptr<VerificationCache> cache;
  if (share_verification_cache) cache = std::make_shared<VerificationCache>();
  server_options.verification_cache = cache;
  absl::StatusOr<EncodingParameters> encoding = EncodingFor(config_);
  if (!encoding.ok()) Fail("bad test config");
  for (int i = 0; i < num_clients_; ++i) {
    const ParticipantId id = ids_[i];
    const auto override_it = identity_override.find(id);
    const TestIdentity& identity =
        override_it != identity_override.end() ? override_it->second : Site(i);
    server_options.cohort[id] = "site-" + std::to_string(i);

    ClientOptions options;
    options.client_name = identity.name;
    options.certificate_chain = identity.cert_pem;
    options.ca_pem = FederationCa().pem();
    options.clock = [] { return kCheckTime; };
    options.verification_cache = cache;
    absl::StatusOr<SigningKey> key =
        SigningKey::FromPem(SecretBytes::CopyFrom(identity.key_pem));
    if (!key.ok()) Fail("test signing key");
    const auto digest_it = model_digest_override.find(id);
    const std::string digest = digest_it != model_digest_override.end()
                                   ? digest_it->second
                                   : model_digest_;
    absl::StatusOr<std::unique_ptr<SecAggClient>> client = SecAggClient::Create(
        std::move(options), std::move(*key), config_, id, digest);
    if (!client.ok()) Fail("SecAggClient::Create");
    clients_[id] = std::move(*client);

    // A deterministic update with a few coordinates beyond the clip range.
    std::mt19937 rng(id);
    std::uniform_real_distribution<float> value(-2.0f, 2.0f);
    std::vector<float> update(config_.vector_length);
    for (float& x : update) x = value(rng);
    if (!update.empty())
      update[0] = 3 * static_cast<float>(config_.encoding.clip_range);
    const double weight = 1 + (id % 50);
    SecretBytes seed(32);
    seed.data()[0] = static_cast<uint8_t>(id);
    seed.data()[1] = static_cast<uint8_t>(id >> 8);
    absl::StatusOr<EncodedInput> encoded =
        EncodeInput(update, weight, *encoding, seed);
    if (!encoded.ok()) Fail("EncodeInput");
    updates_[id] = std::move(update);
    weights_[id] = weight;
    inputs_[id] = std::move(encoded->values);
  }
  absl::StatusOr<std::unique_ptr<SecAggServer>> server =
      SecAggServer::Create(std::move(server_options));
  if (!server.ok()) Fail("SecAggServer::Create");
  server_ = std::move(*server);
}

absl::StatusOr<AggregateResult> SimulatedRound::Run() {
  CreateParticipants();
  auto dropped = [&](Stage stage, ParticipantId id) {
    return drops_[stage].contains(id);
  };
  // Stage 0: AdvertiseKeys.
  for (ParticipantId id : ids_) {
    if (dropped(Stage::kAdvertise, id)) continue;
    absl::StatusOr<KeyAdvertisement> ad = clients_[id]->Advertise();
    if (!ad.ok()) {
      RecordClient(id, ad.status());
      continue;
    }
    absl::StatusOr<KeyAdvertisement> wire =
        ParseKeyAdvertisement(Serialize(*ad));
    if (!wire.ok()) return wire.status();
    advertisements.emplace(id, *wire);
    RecordServer(id, server_->AcceptAdvertisement(*wire));
  }
  if (before_close) before_close(Stage::kAdvertise);
  absl::StatusOr<KeyRoster> roster = server_->CloseAdvertisements();
  if (!roster.ok()) return roster.status();
  // Stage 1: ShareKeys.
  for (ParticipantId id : server_->roster()) {
    if (dropped(Stage::kShareKeys, id)) continue;
    absl::StatusOr<KeyRoster> copy = ParseKeyRoster(Serialize(*roster));
    if (!copy.ok()) return copy.status();
    if (tamper_roster) tamper_roster(id, *copy);
    absl::StatusOr<ShareBundle> bundle = clients_[id]->ShareKeys(*copy);
    if (!bundle.ok()) {
      RecordClient(id, bundle.status());
      continue;
    }
    if (tamper_bundle) tamper_bundle(*bundle);
    absl::StatusOr<ShareBundle> wire = ParseShareBundle(Serialize(*bundle));
    if (!wire.ok()) return wire.status();
    bundles.emplace(id, *wire);
    RecordServer(id, server_->AcceptShareBundle(*wire));
  }
  if (before_close) before_close(Stage::kShareKeys);
  if (absl::Status s = server_->CloseShareKeys(); !s.ok()) return s;
  // Stage 2: MaskedInputCollection.
  for (ParticipantId id : server_->share_senders()) {
    if (dropped(Stage::kMaskInput, id)) continue;
    absl::StatusOr<ShareDelivery> delivery = server_->ShareDeliveryFor(id);
    if (!delivery.ok()) return delivery.status();
    if (tamper_delivery) tamper_delivery(id, *delivery);
    absl::StatusOr<ShareDelivery> wire =
        ParseShareDelivery(Serialize(*delivery));
    if (!wire.ok()) return wire.status();
    absl::StatusOr<MaskedInput> masked =
        clients_[id]->MaskInput(*wire, inputs_.at(id));
    if (!masked.ok()) {
      RecordClient(id, masked.status());
      continue;
    }
    if (tamper_masked) tamper_masked(*masked);
    absl::StatusOr<MaskedInput> sent = ParseMaskedInput(Serialize(*masked));
    if (!sent.ok()) return sent.status();
    masked_inputs.emplace(id, *sent);
    RecordServer(id, server_->AcceptMaskedInput(*sent));
  }
  if (before_close) before_close(Stage::kMaskInput);
  if (absl::Status s = server_->CloseMaskedInputs(); !s.ok()) return s;
  // Stage 3: Unmasking.
  for (ParticipantId id : server_->contributors()) {
    if (dropped(Stage::kUnmask, id)) continue;
    absl::StatusOr<UnmaskRequest> request = server_->UnmaskRequestFor(id);
    if (!request.ok()) return request.status();
    if (tamper_unmask) tamper_unmask(id, *request);
    absl::StatusOr<UnmaskRequest> wire =
        ParseUnmaskRequest(Serialize(*request));
    if (!wire.ok()) return wire.status();
    absl::StatusOr<UnmaskResponse> response = clients_[id]->Unmask(*wire);
    if (!response.ok()) {
      RecordClient(id, response.status());
      continue;
    }
    const std::string bytes = Serialize(*response);
    absl::StatusOr<UnmaskResponse> kept = ParseUnmaskResponse(bytes);
    absl::StatusOr<UnmaskResponse> sent = ParseUnmaskResponse(bytes);
    if (!kept.ok()) return kept.status();
    if (!sent.ok()) return sent.status();
    responses.emplace(id, std::move(*kept));
    RecordServer(id, server_->AcceptUnmaskResponse(*sent));
  }
  if (before_close) before_close(Stage::kUnmask);
  return server_->Finish();
}

ModularVector SimulatedRound::ExpectedSum(
    const std::vector<ParticipantId>& contributors) const {
  ModularVector sum = ModularVector::Zeros(config_.encoding.modulus_bits,
                                           config_.vector_length + 1);
  for (ParticipantId id : contributors) {
    if (!sum.Add(inputs_.at(id)).ok()) Fail("ExpectedSum");
  }
  return sum;
}

}  // namespace samverka::security::secagg::harness
