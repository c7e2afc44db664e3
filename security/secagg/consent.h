// security/secagg/consent.h
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "security/secagg/modular_vector.h"
#include "security/secret_bytes.h"

namespace samverka::security::secagg {

// The consent mask: one site's guard against differencing.
//
// SecAgg+ keeps one round's inputs hidden except for their sum. It says
// nothing about two rounds: a coordinator that runs a round again from the
// same model with another cohort ({a,b,c,d}, then {a,b,c}) learns d's update
// as the difference of two sums, because a site's update for a given model
// and data set is deterministic. A restarted coordinator did exactly this.
//
// The fix is a mask only the site can remove. Before masking its encoded
// input for SecAgg, a site adds one more stream, PRG(c) with a fresh seed c
// derived from a key only the site holds and the round's instance (the
// digest of the key roster, which differs for every run, since every run
// draws fresh keys). It sends SHA-256(instance || c) with its masked input.
// After the usual unmasking the coordinator holds Z = sum_i (x_i + PRG(c_i))
// and must ask every contributor for its c_i (the consent stage); the site
// releases c for at most one instance per (data set, model): its ledger
// records that, durably, before c leaves. Without c_i the term x_i + PRG(c_i)
// is a one-time pad over Z_2^bits, even if every SecAgg mask of the round
// were known, so x_i enters at most one revealed sum per model, whatever the
// coordinator does (docs/threat-model.md has the argument).
//
// An honest coordinator loses nothing to a crash: nothing is released before
// Z is durable, so a run lost before that can simply be run again (no
// consent was given), and one lost after it is completed from the stored Z
// (a site answers the same instance again with the same c).

inline constexpr size_t kConsentSeedBytes = 32;

// The instance a run of secure aggregation is known by: the hex SHA-256 of
// its serialised key roster (a run's fresh keys make it unique).
std::string ConsentInstance(std::string_view serialized_roster);

// c = HKDF-SHA256(ikm = site_key, salt = "samverka/consent/v1", info =
// instance), 32 bytes. kInvalidArgument for a site key shorter than 32
// bytes or an empty instance.
absl::StatusOr<SecretBytes> DeriveConsentSeed(const SecretBytes& site_key,
                                              std::string_view instance);

// The site's commitment to its seed, sent with its masked input:
// hex SHA-256("samverka/consent-commitment/v1" || instance || c).
std::string ConsentCommitment(std::string_view instance, const SecretBytes& seed);

// OK if `seed` opens `commitment` for `instance` (constant-time compare);
// kInvalidArgument otherwise, or for a seed of the wrong length.
absl::Status CheckConsent(std::string_view instance, const SecretBytes& seed,
                          std::string_view commitment);

// input += PRG(c) (sign kAdd, at the site) or sum -= PRG(c) (kSubtract, at
// the coordinator, once per contributor), under a context bound to the
// instance. Errors as ModularVector::AddMask.
absl::Status ApplyConsentMask(ModularVector& values, const SecretBytes& seed,
                              std::string_view instance, MaskSign sign);

// The PRG context of the consent mask of `instance`.
std::string ConsentMaskContext(std::string_view instance);

}  // namespace samverka::security::secagg
