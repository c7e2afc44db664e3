#include "simulation/secure_aggregation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "security/dp/noise.h"
#include "security/pki.h"
#include "security/secagg/client.h"
#include "security/secagg/encoding.h"
#include "security/secagg/server.h"
#include "security/signature.h"
#include "security/tls.h"
#include "simulation/internal/parallel.h"

namespace samverka::simulation {

namespace sa = security::secagg;

SimulatedSecureAggregation::~SimulatedSecureAggregation() = default;

absl::StatusOr<std::unique_ptr<SimulatedSecureAggregation>> SimulatedSecureAggregation::Create(
    const std::vector<std::string>& client_names, const std::string& work_dir,
    sa::ThreatModel threat, double clip_range, uint64_t seed) {
  std::error_code ec;
  std::filesystem::remove_all(work_dir, ec);
  SV_ASSIGN_OR_RETURN(std::unique_ptr<security::CertificateAuthority> ca,
                      security::CertificateAuthority::Init(work_dir, "simulation"));
  auto out = std::unique_ptr<SimulatedSecureAggregation>(new SimulatedSecureAggregation());
  out->ca_pem_ = ca->ca_certificate_pem();
  out->threat_ = threat;
  out->clip_range_ = clip_range;
  out->seed_ = seed;
  out->cache_ = std::make_shared<sa::VerificationCache>(absl::Hours(48));
  for (const std::string& name : client_names) {
    security::CertificateRequest request;
    request.name = name;
    SV_ASSIGN_OR_RETURN(security::IssuedCertificate issued, ca->Issue(request));
    SV_ASSIGN_OR_RETURN(std::string key, security::ReadFileToString(issued.key_path));
    out->names_.push_back(name);
    out->certificates_.push_back(issued.certificate_pem);
    out->keys_.push_back(security::SecretBytes::CopyFrom(key));
  }
  return out;
}

absl::StatusOr<SimulatedSecureAggregation::ProtocolResult> SimulatedSecureAggregation::RunProtocol(
    int64_t round, const std::string& digest, uint64_t vector_length, const std::vector<int>& cohort,
    double max_weight, int modulus_bits, int workers, const Input& input) {
  const int n = static_cast<int>(cohort.size());
  sa::RoundConfig config;
  config.federation_id = "simulation";
  config.round = round;
  config.threat = threat_;
  config.encoding.clip_range = clip_range_;
  config.encoding.max_weight = max_weight;
  config.encoding.modulus_bits = modulus_bits;
  config.vector_length = vector_length;
  config.min_clients = std::min(n, 3);
  config.max_clients = n;

  sa::ServerOptions server_options;
  server_options.config = config;
  for (int i = 0; i < n; ++i) server_options.cohort[static_cast<sa::ParticipantId>(i + 1)] = names_[cohort[i]];
  server_options.model_digest = digest;
  server_options.ca_pem = ca_pem_;
  server_options.verification_cache = cache_;
  SV_ASSIGN_OR_RETURN(std::unique_ptr<sa::SecAggServer> server, sa::SecAggServer::Create(server_options));

  // Stage 0 and 1: keys and shares, before training (as in Flower).
  std::vector<std::unique_ptr<sa::SecAggClient>> clients(n);
  for (int i = 0; i < n; ++i) {
    sa::ClientOptions options;
    options.client_name = names_[cohort[i]];
    options.certificate_chain = certificates_[cohort[i]];
    options.ca_pem = ca_pem_;
    options.policy.min_clients = config.min_clients;
    options.verification_cache = cache_;
    SV_ASSIGN_OR_RETURN(security::SigningKey key, security::SigningKey::FromPem(keys_[cohort[i]]));
    SV_ASSIGN_OR_RETURN(clients[i], sa::SecAggClient::Create(std::move(options), std::move(key), config,
                                                             static_cast<sa::ParticipantId>(i + 1),
                                                             digest));
    SV_ASSIGN_OR_RETURN(sa::KeyAdvertisement advertisement, clients[i]->Advertise());
    SV_RETURN_IF_ERROR(server->AcceptAdvertisement(advertisement));
  }
  SV_ASSIGN_OR_RETURN(sa::KeyRoster roster, server->CloseAdvertisements());
  for (int i = 0; i < n; ++i) {
    SV_ASSIGN_OR_RETURN(sa::ShareBundle bundle, clients[i]->ShareKeys(roster));
    SV_RETURN_IF_ERROR(server->AcceptShareBundle(bundle));
  }
  SV_RETURN_IF_ERROR(server->CloseShareKeys());

  // Stage 2: each client computes its input and masks it; the server only
  // ever holds the running sum of masked vectors.
  ProtocolResult out;
  out.contributed.assign(n, false);
  std::mutex mutex;
  internal::ParallelFor(workers, n, [&](int worker, int i) {
    absl::StatusOr<sa::ModularVector> values = input(worker, i, clients[i]->encoding());
    if (!values.ok()) {
      Logger("simulation")->warn("round {}: {} drops out: {}", round, names_[cohort[i]],
                                 values.status().message());
      return;
    }
    std::lock_guard<std::mutex> lock(mutex);
    absl::StatusOr<sa::ShareDelivery> delivery = server->ShareDeliveryFor(static_cast<sa::ParticipantId>(i + 1));
    if (!delivery.ok()) return;
    absl::StatusOr<sa::MaskedInput> masked = clients[i]->MaskInput(*delivery, *values);
    if (!masked.ok() || !server->AcceptMaskedInput(*masked).ok()) return;
    out.contributed[i] = true;
    out.masked_bytes += values->size() * (config.encoding.modulus_bits / 8);
  });
  SV_RETURN_IF_ERROR(server->CloseMaskedInputs());

  // Stage 3: unmask.
  for (int i = 0; i < n; ++i) {
    if (!out.contributed[i]) continue;
    SV_ASSIGN_OR_RETURN(sa::UnmaskRequest request,
                        server->UnmaskRequestFor(static_cast<sa::ParticipantId>(i + 1)));
    SV_ASSIGN_OR_RETURN(sa::UnmaskResponse response, clients[i]->Unmask(request));
    SV_RETURN_IF_ERROR(server->AcceptUnmaskResponse(response));
  }
  SV_ASSIGN_OR_RETURN(out.result, server->Finish());
  out.encoding = server->encoding();
  for (sa::ParticipantId id : out.result.contributors) out.contributors.push_back(names_[cohort[id - 1]]);
  return out;
}

absl::StatusOr<SecureAggregate> SimulatedSecureAggregation::RunRound(
    int64_t round, const std::string& model_digest, uint64_t vector_length,
    const std::vector<int>& cohort, double max_weight, int workers,
    const std::function<absl::StatusOr<ClientContribution>(int, int)>& train,
    const DistributedNoise& noise) {
  SecureAggregate out;
  std::vector<size_t> clipped(cohort.size(), 0);
  std::vector<double> weighted_loss(cohort.size(), 0);
  Input input = [&](int worker, int i,
                    const sa::EncodingParameters& encoding) -> absl::StatusOr<sa::ModularVector> {
    SV_ASSIGN_OR_RETURN(ClientContribution contribution, train(worker, i));
    // Rounding coins from (seed, round, client), so a run is reproducible.
    security::SecretBytes coins(32);
    uint64_t state = seed_ ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(round + 1)) ^
                     (0xbf58476d1ce4e5b9ULL * static_cast<uint64_t>(cohort[i] + 1));
    for (size_t b = 0; b < 32; b += 8) {
      state += 0x9e3779b97f4a7c15ULL;
      uint64_t z = (state ^ (state >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      std::memcpy(coins.data() + b, &z, 8);
    }
    absl::StatusOr<sa::EncodedInput> encoded =
        sa::EncodeInput(contribution.update, contribution.weight, encoding, coins);
    if (!encoded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot encode its update: ", encoded.status().message()));
    }
    if (noise.stddev > 0) {
      // The client's share of the distributed noise, in quantisation levels,
      // added mod 2^bits before masking (Kairouz et al., ICML 2021).
      absl::StatusOr<security::dp::DiscreteGaussian> sampler =
          security::dp::DiscreteGaussian::Create(noise.stddev / encoding.step());
      std::vector<int64_t> z(std::min(noise.coordinates, encoded->values.size()));
      absl::Status sampled = sampler.ok() ? sampler->Sample(z) : sampler.status();
      if (!sampled.ok()) {
        return absl::InternalError(absl::StrCat("cannot draw its DP noise: ", sampled.message()));
      }
      for (size_t k = 0; k < z.size(); ++k) {
        encoded->values.Set(k, encoded->values.Get(k) + static_cast<uint64_t>(z[k]));
      }
    }
    // Counted only for the members whose masked input the server took.
    clipped[i] = encoded->num_clipped;
    weighted_loss[i] = contribution.weight * contribution.train_loss;
    return std::move(encoded->values);
  };
  SV_ASSIGN_OR_RETURN(ProtocolResult run, RunProtocol(round, model_digest, vector_length, cohort,
                                                      max_weight, /*modulus_bits=*/32, workers, input));
  SV_ASSIGN_OR_RETURN(sa::DecodedSum sum,
                      sa::DecodeSum(run.result.sum, run.encoding,
                                    static_cast<int>(run.result.contributors.size())));
  for (size_t i = 0; i < cohort.size(); ++i) {
    if (!run.contributed[i]) continue;
    out.clipped_values += clipped[i];
    out.weighted_train_loss += weighted_loss[i];
  }
  out.contributors = std::move(run.contributors);
  out.masked_bytes = run.masked_bytes;
  out.weighted_sum = std::move(sum.weighted_sum);
  out.total_weight = sum.total_weight;
  out.neighbours = run.result.parameters.num_neighbours;
  out.threshold = run.result.parameters.threshold;
  return out;
}

absl::StatusOr<IntegerSum> SimulatedSecureAggregation::SumIntegers(
    int64_t round, const std::string& label, size_t length, const std::vector<int>& cohort,
    int workers, const std::function<absl::StatusOr<std::vector<uint64_t>>(int)>& input) {
  if (length < 1) return absl::InvalidArgumentError("an integer sum needs at least one element");
  Input encode = [&](int, int i, const sa::EncodingParameters&) -> absl::StatusOr<sa::ModularVector> {
    SV_ASSIGN_OR_RETURN(std::vector<uint64_t> values, input(i));
    if (values.size() != length) {
      return absl::InvalidArgumentError(
          absl::StrCat("its vector has ", values.size(), " elements, not ", length));
    }
    return sa::ModularVector::FromWords(std::move(values));
  };
  // The last element stands where a training round has its weight.
  SV_ASSIGN_OR_RETURN(ProtocolResult run, RunProtocol(round, label, length - 1, cohort,
                                                      /*max_weight=*/1, /*modulus_bits=*/64,
                                                      workers, encode));
  IntegerSum out;
  out.contributors = std::move(run.contributors);
  out.masked_bytes = run.masked_bytes;
  out.sum.assign(run.result.sum.words64().begin(), run.result.sum.words64().end());
  return out;
}

}  // namespace samverka::simulation
