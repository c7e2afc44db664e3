#include "simulation/attack.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "common/random.h"
#include "common/status_macros.h"

namespace samverka::simulation {

std::string AttackSpec::ToString() const {
  switch (kind) {
    case Kind::kSignFlip: return "sign-flip";
    case Kind::kScale: return absl::StrCat("scale:", scale);
    case Kind::kLabelFlip: return "label-flip";
  }
  return "";
}

absl::StatusOr<AttackSpec> ParseAttack(std::string_view spec) {
  AttackSpec attack;
  if (spec == "sign-flip") return attack;
  if (spec == "label-flip") {
    attack.kind = AttackSpec::Kind::kLabelFlip;
    return attack;
  }
  if (spec.substr(0, 6) == "scale:") {
    double scale = 0;
    if (!absl::SimpleAtod(std::string(spec.substr(6)), &scale) || !std::isfinite(scale) ||
        scale == 0 || scale == 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attack '", std::string(spec), "': S in scale:S must be a finite number other than 0 "
          "and 1, e.g. scale:10 or scale:-4"));
    }
    attack.kind = AttackSpec::Kind::kScale;
    attack.scale = scale;
    return attack;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown attack '", std::string(spec), "'; attacks are sign-flip, scale:S, label-flip"));
}

std::vector<bool> ChooseMalicious(int clients, double fraction, uint64_t seed) {
  std::vector<bool> malicious(std::max(clients, 0), false);
  const int count = static_cast<int>(std::lround(fraction * clients));
  if (count <= 0) return malicious;
  std::vector<int> order(clients);
  for (int i = 0; i < clients; ++i) order[i] = i;
  // A stream of its own, so choosing attackers leaves the other draws alone.
  std::mt19937_64 rng(seed ^ 0x6d616c6963696f75ULL);
  Shuffle(order, rng);
  for (int i = 0; i < std::min(count, clients); ++i) malicious[order[i]] = true;
  return malicious;
}

void PoisonUpdate(const AttackSpec& attack, std::span<float> update) {
  switch (attack.kind) {
    case AttackSpec::Kind::kSignFlip:
      for (float& v : update) v = -v;
      break;
    case AttackSpec::Kind::kScale:
      for (float& v : update) v = static_cast<float>(v * attack.scale);
      break;
    case AttackSpec::Kind::kLabelFlip:
      break;
  }
}

absl::StatusOr<std::string> PoisonEncodedUpdate(const AttackSpec& attack,
                                                std::string_view encoded_update) {
  absl::StatusOr<ModelParameters> update = DecodeParameters(encoded_update);
  if (!update.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot poison the update: ", update.status().message()));
  }
  PoisonUpdate(attack, update->values);
  return EncodeParameters(*update);
}

Dataset FlipLabels(const Dataset& data, std::span<const int64_t> indices) {
  Dataset out;
  out.sample_shape = data.sample_shape;
  out.num_classes = data.num_classes;
  out.class_names = data.class_names;
  out.feature_names = data.feature_names;
  const int64_t size = data.sample_size();
  out.features.reserve(indices.size() * size);
  out.labels.reserve(indices.size());
  for (int64_t i : indices) {
    out.features.insert(out.features.end(), data.features.begin() + i * size,
                        data.features.begin() + (i + 1) * size);
    out.labels.push_back(data.num_classes - 1 - data.labels[i]);
  }
  return out;
}

}  // namespace samverka::simulation
