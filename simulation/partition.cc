// simulation/partition.cc
#include "simulation/partition.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/status_macros.h"
#include "simulation/internal/random.h"

namespace samverka::simulation {
namespace {

using ClientIndices = std::vector<std::vector<int64_t>>;

constexpr absl::string_view kValidForms =
    "valid forms: iid, dirichlet:ALPHA (ALPHA > 0), shards:K (integer K >= 1)";
constexpr absl::string_view kDirichletPrefix = "dirichlet:";
constexpr absl::string_view kShardsPrefix = "shards:";

absl::Status BadSpec(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "bad partition spec '", text, "': ", why, "; ", kValidForms));
}

// Shortest text that parses back to `value`.
std::string ShortestDouble(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// Sorts every client's indices so the output is canonical.
ClientIndices SortEach(ClientIndices partition) {
  for (auto& indices : partition) std::sort(indices.begin(), indices.end());
  return partition;
}

std::vector<int64_t> Iota(size_t n) {
  std::vector<int64_t> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = static_cast<int64_t>(i);
  return values;
}

// Splits `order` into `parts` contiguous runs whose sizes differ by <= 1.
ClientIndices SplitEvenly(const std::vector<int64_t>& order, size_t parts) {
  ClientIndices out(parts);
  const size_t n = order.size();
  for (size_t p = 0; p < parts; ++p) {
    out[p].assign(
        order.begin() + static_cast<std::ptrdiff_t>(p * n / parts),
        order.begin() + static_cast<std::ptrdiff_t>((p + 1) * n / parts));
  }
  return out;
}

ClientIndices IidPartition(size_t num_samples, int num_clients,
                           std::mt19937_64& rng) {
  std::vector<int64_t> order = Iota(num_samples);
  internal::Shuffle(order, rng);
  return SplitEvenly(order, static_cast<size_t>(num_clients));
}

absl::StatusOr<ClientIndices> ShardPartition(const std::vector<int64_t>& labels,
                                             int num_clients,
                                             const PartitionSpec& spec,
                                             std::mt19937_64& rng) {
  const int64_t num_shards =
      static_cast<int64_t>(num_clients) * spec.shards_per_client;
  if (num_shards > static_cast<int64_t>(labels.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.ToString(), " needs ", num_shards, " shards for ", num_clients,
        " clients but there are only ", labels.size(), " samples"));
  }
  // Shuffle first so which samples of a class share a shard is random.
  std::vector<int64_t> order = Iota(labels.size());
  internal::Shuffle(order, rng);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return labels[a] < labels[b]; });
  const ClientIndices shards =
      SplitEvenly(order, static_cast<size_t>(num_shards));
  std::vector<int64_t> shard_ids = Iota(shards.size());
  internal::Shuffle(shard_ids, rng);
  ClientIndices out(static_cast<size_t>(num_clients));
  for (size_t s = 0; s < shard_ids.size(); ++s) {
    const auto& shard = shards[shard_ids[s]];
    auto& client = out[s / static_cast<size_t>(spec.shards_per_client)];
    client.insert(client.end(), shard.begin(), shard.end());
  }
  return out;
}

ClientIndices IndicesByClass(const std::vector<int64_t>& labels,
                             int64_t num_classes) {
  ClientIndices by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < labels.size(); ++i) {
    by_class[labels[i]].push_back(static_cast<int64_t>(i));
  }
  return by_class;
}

// NIID-Bench's rule: a client already holding >= N / num_clients samples
// gets no more; the rest are renormalised. If that leaves nothing (all mass
// on full clients), the open clients share equally.
void MaskFullClients(const ClientIndices& clients, size_t num_samples,
                     std::vector<double>& proportions) {
  const double cap =
      static_cast<double>(num_samples) / static_cast<double>(clients.size());
  double sum = 0.0;
  for (size_t j = 0; j < clients.size(); ++j) {
    if (static_cast<double>(clients[j].size()) >= cap) proportions[j] = 0.0;
    sum += proportions[j];
  }
  if (sum <= 0.0) {
    for (size_t j = 0; j < clients.size(); ++j) {
      proportions[j] = static_cast<double>(clients[j].size()) < cap ? 1.0 : 0.0;
      sum += proportions[j];
    }
  }
  for (double& p : proportions) p /= sum;
}

// Appends consecutive runs of `indices` to the clients, client j getting
// the run that ends at floor(cumsum(p)_j * n) (the last one the rest).
void DealByProportions(const std::vector<int64_t>& indices,
                       const std::vector<double>& proportions,
                       ClientIndices& clients) {
  const size_t n = indices.size();
  size_t begin = 0;
  double cumulative = 0.0;
  for (size_t j = 0; j < clients.size(); ++j) {
    cumulative += proportions[j];
    size_t end = j + 1 == clients.size()
                     ? n
                     : static_cast<size_t>(cumulative * static_cast<double>(n));
    end = std::clamp(end, begin, n);
    clients[j].insert(clients[j].end(), indices.begin() + begin,
                      indices.begin() + end);
    begin = end;
  }
}

// One NIID-Bench draw (Li et al., ICDE 2022, "noniid-labeldir").
ClientIndices DrawDirichletOnce(const ClientIndices& by_class,
                                size_t num_samples, int num_clients,
                                double alpha, std::mt19937_64& rng) {
  ClientIndices clients(static_cast<size_t>(num_clients));
  for (const std::vector<int64_t>& class_indices : by_class) {
    std::vector<int64_t> indices = class_indices;
    internal::Shuffle(indices, rng);
    std::vector<double> proportions =
        internal::SymmetricDirichlet(rng, alpha, num_clients);
    MaskFullClients(clients, num_samples, proportions);
    DealByProportions(indices, proportions, clients);
  }
  return clients;
}

size_t SmallestClient(const ClientIndices& clients) {
  size_t smallest = clients.front().size();
  for (const auto& client : clients)
    smallest = std::min(smallest, client.size());
  return smallest;
}

absl::StatusOr<ClientIndices> DirichletPartition(
    const std::vector<int64_t>& labels, int64_t num_classes, int num_clients,
    const PartitionSpec& spec, std::mt19937_64& rng) {
  const auto minimum = static_cast<size_t>(spec.min_samples_per_client);
  if (minimum * static_cast<size_t>(num_clients) > labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.ToString(), ": ", num_clients, " clients with at least ", minimum,
        " samples each need ", minimum * num_clients, " samples, there are ",
        labels.size()));
  }
  const ClientIndices by_class = IndicesByClass(labels, num_classes);
  size_t smallest = 0;
  for (int attempt = 0; attempt < spec.max_attempts; ++attempt) {
    ClientIndices clients = DrawDirichletOnce(by_class, labels.size(),
                                              num_clients, spec.alpha, rng);
    smallest = SmallestClient(clients);
    if (smallest >= minimum) return clients;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      spec.ToString(), ": after ", spec.max_attempts,
      " draws some client still had fewer than ", minimum,
      " samples (last draw's smallest: ", smallest, ") with ", num_clients,
      " clients and ", labels.size(),
      " samples; use a larger alpha, fewer clients or a lower minimum"));
}

absl::Status CheckInputs(const std::vector<int64_t>& labels,
                         int64_t num_classes, int num_clients) {
  if (num_clients < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_clients must be >= 1, got ", num_clients));
  }
  if (num_classes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_classes must be >= 1, got ", num_classes));
  }
  if (static_cast<size_t>(num_clients) > labels.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "more clients (", num_clients, ") than samples (", labels.size(), ")"));
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", labels[i], " of sample ", i,
                       " is outside [0, ", num_classes, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PartitionSpec::Validate() const {
  if (kind == Kind::kDirichlet && !(alpha > 0 && std::isfinite(alpha))) {
    return absl::InvalidArgumentError(
        absl::StrCat("dirichlet alpha must be finite and > 0, got ", alpha));
  }
  if (kind == Kind::kShards && shards_per_client < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shards_per_client must be >= 1, got ", shards_per_client));
  }
  if (min_samples_per_client < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_samples_per_client must be >= 0, got ", min_samples_per_client));
  }
  if (max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts must be >= 1, got ", max_attempts));
  }
  return absl::OkStatus();
}

std::string PartitionSpec::ToString() const {
  switch (kind) {
    case Kind::kIid:
      return "iid";
    case Kind::kDirichlet:
      return absl::StrCat("dirichlet:", ShortestDouble(alpha));
    case Kind::kShards:
      return absl::StrCat("shards:", shards_per_client);
  }
  return "unknown";
}

absl::StatusOr<PartitionSpec> ParsePartitionSpec(std::string_view std_text) {
  // Debian's Abseil has its own string_view type.
  const absl::string_view text(std_text.data(), std_text.size());
  PartitionSpec spec;
  if (text == "iid") return spec;
  if (absl::StartsWith(text, kDirichletPrefix)) {
    spec.kind = PartitionSpec::Kind::kDirichlet;
    const absl::string_view value = text.substr(kDirichletPrefix.size());
    if (!absl::SimpleAtod(value, &spec.alpha) || !std::isfinite(spec.alpha) ||
        spec.alpha <= 0) {
      return BadSpec(text, "ALPHA must be a finite number > 0");
    }
    return spec;
  }
  if (absl::StartsWith(text, kShardsPrefix)) {
    spec.kind = PartitionSpec::Kind::kShards;
    const absl::string_view value = text.substr(kShardsPrefix.size());
    if (!absl::SimpleAtoi(value, &spec.shards_per_client) ||
        spec.shards_per_client < 1) {
      return BadSpec(text, "K must be an integer >= 1");
    }
    return spec;
  }
  return BadSpec(text, "unknown kind");
}

absl::StatusOr<std::vector<std::vector<int64_t>>> Partition(
    const std::vector<int64_t>& labels, int64_t num_classes, int num_clients,
    const PartitionSpec& spec, uint64_t seed) {
  SV_RETURN_IF_ERROR(spec.Validate());
  SV_RETURN_IF_ERROR(CheckInputs(labels, num_classes, num_clients));
  std::mt19937_64 rng(seed);
  switch (spec.kind) {
    case PartitionSpec::Kind::kIid:
      return SortEach(IidPartition(labels.size(), num_clients, rng));
    case PartitionSpec::Kind::kShards: {
      SV_ASSIGN_OR_RETURN(ClientIndices clients,
                          ShardPartition(labels, num_clients, spec, rng));
      return SortEach(std::move(clients));
    }
    case PartitionSpec::Kind::kDirichlet: {
      SV_ASSIGN_OR_RETURN(
          ClientIndices clients,
          DirichletPartition(labels, num_classes, num_clients, spec, rng));
      return SortEach(std::move(clients));
    }
  }
  return absl::InvalidArgumentError("unknown partition kind");
}

std::vector<std::vector<int64_t>> LabelCounts(
    const std::vector<std::vector<int64_t>>& partition,
    const std::vector<int64_t>& labels, int64_t num_classes) {
  std::vector<std::vector<int64_t>> counts(
      partition.size(),
      std::vector<int64_t>(static_cast<size_t>(num_classes), 0));
  for (size_t client = 0; client < partition.size(); ++client) {
    for (int64_t index : partition[client]) {
      assert(index >= 0 && static_cast<size_t>(index) < labels.size());
      const int64_t label = labels[index];
      assert(label >= 0 && label < num_classes);
      ++counts[client][label];
    }
  }
  return counts;
}

std::string FormatLabelSummary(
    const std::vector<std::vector<int64_t>>& partition,
    const std::vector<int64_t>& labels, int64_t num_classes) {
  std::vector<std::vector<int64_t>> rows =
      LabelCounts(partition, labels, num_classes);
  std::vector<int64_t> total(static_cast<size_t>(num_classes), 0);
  for (const auto& row : rows) {
    for (size_t k = 0; k < row.size(); ++k) total[k] += row[k];
  }
  rows.push_back(total);
  // Column width: wide enough for the largest count anywhere in the table.
  int64_t largest = static_cast<int64_t>(labels.size());
  for (int64_t v : total) largest = std::max(largest, v);
  const int width =
      std::max<int>(3, static_cast<int>(absl::StrCat(largest).size()));
  const int samples_width = std::max(width, 7);
  std::string out =
      absl::StrFormat("%6s %*s |", "client", samples_width, "samples");
  for (int64_t k = 0; k < num_classes; ++k) {
    absl::StrAppendFormat(&out, " %*d", width, k);
  }
  out += "\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t samples = 0;
    for (int64_t v : rows[r]) samples += v;
    const std::string name = r + 1 == rows.size() ? "total" : absl::StrCat(r);
    absl::StrAppendFormat(&out, "%6s %*d |", name, samples_width, samples);
    for (int64_t v : rows[r]) absl::StrAppendFormat(&out, " %*d", width, v);
    out += "\n";
  }
  return out;
}

}  // namespace samverka::simulation
