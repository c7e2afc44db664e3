// simulation/attack.h
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dataset.h"

namespace samverka::simulation {

// What a malicious virtual client does, for studying robust aggregation.
// Model poisoning (sign flip, scaling) changes the update after honest
// training; data poisoning (label flip) trains honestly on flipped labels.
struct AttackSpec {
  enum class Kind { kSignFlip, kScale, kLabelFlip };
  Kind kind = Kind::kSignFlip;
  double scale = 1;  // kScale: the factor S

  // The spec as written: "sign-flip", "scale:S" or "label-flip".
  std::string ToString() const;
};

// Parses "sign-flip", "scale:S" (S a finite number other than 0 and 1, e.g.
// scale:-4 or scale:10) or "label-flip"; kInvalidArgument naming `spec` and
// listing the forms otherwise.
absl::StatusOr<AttackSpec> ParseAttack(std::string_view spec);

// Which of `clients` clients are malicious: round(fraction * clients) of
// them, chosen uniformly by `seed` (portable draws), as a flag per client.
std::vector<bool> ChooseMalicious(int clients, double fraction, uint64_t seed);

// Model poisoning in place: sign-flip negates, scale multiplies by S;
// label-flip leaves the update alone (its harm is in the data).
void PoisonUpdate(const AttackSpec& attack, std::span<float> update);

// The codec bundle of an encoded update, poisoned. kInvalidArgument if
// `encoded_update` does not decode.
absl::StatusOr<std::string> PoisonEncodedUpdate(const AttackSpec& attack,
                                                std::string_view encoded_update);

// Data poisoning: a data set of the `indices` samples of `data` (in that
// order) whose labels are flipped, label -> num_classes - 1 - label. The
// features are copied, so only the malicious clients' share is duplicated.
Dataset FlipLabels(const Dataset& data, std::span<const int64_t> indices);

}  // namespace samverka::simulation
