#include "coordinator/sealed_sum_store.h"

#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "common/status_macros.h"
#include "coordinator/internal/durable_files.h"

namespace samverka::coordinator {
namespace {

namespace fs = std::filesystem;
namespace sa = security::secagg;

bool IsHexDigest(const std::string& digest) {
  return digest.size() == 64 &&
         digest.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string SumBytes(const sa::ModularVector& sum) {
  if (sum.bits() == 32) {
    return std::string(reinterpret_cast<const char*>(sum.words32().data()),
                       sum.words32().size() * sizeof(uint32_t));
  }
  return std::string(reinterpret_cast<const char*>(sum.words64().data()),
                     sum.words64().size() * sizeof(uint64_t));
}

absl::StatusOr<sa::ModularVector> SumFromBytes(const std::string& bytes, int bits, size_t size) {
  const size_t word = bits == 32 ? 4 : 8;
  if ((bits != 32 && bits != 64) || bytes.size() != word * size) {
    return absl::DataLossError("the sealed sum's size does not match its description");
  }
  if (bits == 32) {
    std::vector<uint32_t> words(size);
    std::memcpy(words.data(), bytes.data(), bytes.size());
    return sa::ModularVector::FromWords(std::move(words));
  }
  std::vector<uint64_t> words(size);
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return sa::ModularVector::FromWords(std::move(words));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SealedSumStore>> SealedSumStore::Open(const std::string& state_dir) {
  const std::string dir = (fs::path(state_dir) / "sealed").string();
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return internal::ErrnoError(error.value(), "cannot create", dir);
  return std::unique_ptr<SealedSumStore>(new SealedSumStore(dir));
}

std::string SealedSumStore::PathOf(const std::string& model_digest,
                                   const std::string& suffix) const {
  return (fs::path(dir_) / (model_digest + suffix)).string();
}

absl::Status SealedSumStore::Save(const SealedSum& sum) {
  if (!IsHexDigest(sum.model_digest)) {
    return absl::InvalidArgumentError("a sealed sum needs the model's SHA-256");
  }
  const std::string bytes = SumBytes(sum.sum);
  SV_RETURN_IF_ERROR(internal::WriteFileAtomically(PathOf(sum.model_digest, ".sum"), bytes, 0600));
  nlohmann::json commitments = nlohmann::json::object();
  for (const auto& [id, c] : sum.commitments) commitments[std::to_string(id)] = c;
  const nlohmann::json description = {
      {"round", sum.round},
      {"model_digest", sum.model_digest},
      {"instance", sum.instance},
      {"round_config", absl::BytesToHexString(sum.round_config)},
      {"cohort", sum.cohort},
      {"contributors", sum.contributors},
      {"dropped", sum.dropped},
      {"commitments", commitments},
      {"bits", sum.sum.bits()},
      {"size", sum.sum.size()},
      {"sum_sha256", Sha256Hex(bytes)},
      {"neighbours", sum.parameters.num_neighbours},
      {"threshold", sum.parameters.threshold},
      {"masked_bytes", sum.masked_bytes}};
  return internal::WriteFileAtomically(PathOf(sum.model_digest, ".json"), description.dump(), 0600);
}

absl::StatusOr<std::optional<SealedSum>> SealedSumStore::Load(const std::string& model_digest) {
  if (!IsHexDigest(model_digest)) return std::nullopt;
  const std::string json_path = PathOf(model_digest, ".json");
  if (!fs::exists(json_path)) return std::nullopt;
  SV_ASSIGN_OR_RETURN(std::string text, internal::ReadFile(json_path));
  const nlohmann::json d = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto damaged = [&](const std::string& path) {
    return absl::DataLossError(absl::StrCat(
        "the sealed secure sum ", path,
        " is damaged; the round it belongs to cannot be completed (move the file away to run "
        "that round again with sites that have not released their sum)"));
  };
  SealedSum sum;
  try {
    sum.round = d.at("round").get<int64_t>();
    sum.model_digest = d.at("model_digest").get<std::string>();
    sum.instance = d.at("instance").get<std::string>();
    sum.round_config = absl::HexStringToBytes(d.at("round_config").get<std::string>());
    sum.cohort = d.at("cohort").get<std::vector<std::string>>();
    sum.contributors = d.at("contributors").get<std::vector<uint32_t>>();
    sum.dropped = d.at("dropped").get<std::vector<uint32_t>>();
    for (const auto& [id, c] : d.at("commitments").items()) {
      sum.commitments[static_cast<uint32_t>(std::stoul(id))] = c.get<std::string>();
    }
    sum.parameters.num_neighbours = d.at("neighbours").get<int>();
    sum.parameters.threshold = d.at("threshold").get<int>();
    sum.masked_bytes = d.at("masked_bytes").get<uint64_t>();
    const std::string bytes_path = PathOf(model_digest, ".sum");
    SV_ASSIGN_OR_RETURN(std::string bytes, internal::ReadFile(bytes_path));
    if (Sha256Hex(bytes) != d.at("sum_sha256").get<std::string>()) return damaged(bytes_path);
    absl::StatusOr<sa::ModularVector> words =
        SumFromBytes(bytes, d.at("bits").get<int>(), d.at("size").get<size_t>());
    if (!words.ok()) return damaged(bytes_path);
    sum.sum = std::move(*words);
  } catch (const std::exception&) {
    return damaged(json_path);
  }
  if (sum.model_digest != model_digest) return damaged(json_path);
  return sum;
}

absl::StatusOr<std::map<uint32_t, security::SecretBytes>> SealedSumStore::LoadConsents(
    const std::string& model_digest) {
  std::map<uint32_t, security::SecretBytes> seeds;
  if (!IsHexDigest(model_digest)) return seeds;
  const std::string prefix = model_digest + ".consent-";
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix) || name.ends_with(".tmp")) continue;
    uint32_t id = 0;
    try {
      id = static_cast<uint32_t>(std::stoul(name.substr(prefix.size())));
    } catch (const std::exception&) {
      continue;
    }
    SV_ASSIGN_OR_RETURN(std::string bytes, internal::ReadFile(entry.path().string()));
    seeds.emplace(id, security::SecretBytes::CopyFrom(bytes));
    OPENSSL_cleanse(bytes.data(), bytes.size());
  }
  return seeds;
}

absl::Status SealedSumStore::SaveConsent(const std::string& model_digest, uint32_t participant,
                                         const security::SecretBytes& seed) {
  return internal::WriteFileAtomically(
      PathOf(model_digest, absl::StrCat(".consent-", participant)),
      std::string_view(reinterpret_cast<const char*>(seed.data()), seed.size()), 0600);
}

absl::Status SealedSumStore::Remove(const std::string& model_digest) {
  if (!IsHexDigest(model_digest)) return absl::OkStatus();
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    if (entry.path().filename().string().starts_with(model_digest)) {
      fs::remove(entry.path(), error);
    }
  }
  return internal::FsyncPath(dir_);
}

absl::Status SealedSumStore::RemoveAllExcept(const std::string& model_digest) {
  std::error_code error;
  bool removed = false;
  for (const auto& entry : fs::directory_iterator(dir_, error)) {
    if (!entry.path().filename().string().starts_with(model_digest)) {
      fs::remove(entry.path(), error);
      removed = true;
    }
  }
  return removed ? internal::FsyncPath(dir_) : absl::OkStatus();
}

}  // namespace samverka::coordinator
