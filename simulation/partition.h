// simulation/partition.h
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace samverka::simulation {

// How a simulation splits one data set among its virtual clients. Parsed
// from the text forms accepted by ParsePartitionSpec; a plain value type.
struct PartitionSpec {
  enum class Kind {
    // Shuffle, then split into near-equal parts.
    kIid,
    // Label skew as in NIID-Bench (Li et al., ICDE 2022): per class,
    // proportions over clients drawn from Dir(alpha).
    kDirichlet,
    // McMahan et al. (AISTATS 2017): sort by label, cut into
    // num_clients * shards_per_client shards, shards_per_client per client.
    kShards,
  };

  Kind kind = Kind::kIid;
  // kDirichlet: concentration, > 0; small values give few classes per client.
  double alpha = 0.5;
  // kShards: shards per client, >= 1.
  int shards_per_client = 2;
  // kDirichlet: redraw until every client has at least this many samples
  // (NIID-Bench uses 10), >= 0.
  int64_t min_samples_per_client = 10;
  // kDirichlet: give up after this many draws, >= 1.
  int max_attempts = 1000;

  // kInvalidArgument naming the field that is out of range.
  absl::Status Validate() const;
  // The text form, e.g. "dirichlet:0.5" (round-trips through the parser).
  std::string ToString() const;
};

// Parses "iid", "dirichlet:ALPHA" (ALPHA > 0, finite) or "shards:K"
// (integer K >= 1). Other fields keep their defaults. kInvalidArgument with
// the offending text and the valid forms.
absl::StatusOr<PartitionSpec> ParsePartitionSpec(std::string_view text);

// Splits sample indices [0, labels.size()) among `num_clients` clients.
// Every index goes to exactly one client; each client's list is ascending.
// The result depends only on the inputs and `seed` (identical across
// standard libraries). kInvalidArgument for num_clients < 1, num_classes < 1,
// a label outside [0, num_classes), an invalid spec, more clients (or, for
// shards, more shards) than samples, or dirichlet's minimum exceeding
// samples / clients; kFailedPrecondition when dirichlet gives up after
// spec.max_attempts draws without every client reaching the minimum.
absl::StatusOr<std::vector<std::vector<int64_t>>> Partition(
    const std::vector<int64_t>& labels, int64_t num_classes, int num_clients,
    const PartitionSpec& spec, uint64_t seed);

// counts[client][label]: how many samples of each class every client holds.
// `partition` must index into `labels`, whose values are in [0, num_classes).
std::vector<std::vector<int64_t>> LabelCounts(
    const std::vector<std::vector<int64_t>>& partition,
    const std::vector<int64_t>& labels, int64_t num_classes);

// A fixed-width text table for logs: one row per client (its id, sample
// count and count per class) and a total row. Same preconditions as
// LabelCounts. Ends with a newline.
std::string FormatLabelSummary(
    const std::vector<std::vector<int64_t>>& partition,
    const std::vector<int64_t>& labels, int64_t num_classes);

}  // namespace samverka::simulation
