// common/study_manifest.h
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/task.h"

namespace samverka {

// What a study manifest (study.toml) says that a site needs to decide
// whether to take part and how to train: both sides read it with this code,
// the coordinator (apps, coordinator/studies) and each site from the signed
// bytes it fetched (client/). The coordinator reads the manifest's other
// keys (cohort, deadlines, strategy, SecAgg parameters) on top of these;
// see docs/studies.md for every key.
struct StudyManifest {
  std::string name;
  // "train" or "statistics" (its [statistics] table: statistics/spec.h).
  std::string kind = "train";
  bool statistics() const { return kind == "statistics"; }
  // The name of the data set each site must hold (client.toml [datasets]).
  std::string dataset;
  // The architecture (a built-in name, or the file name of the TorchScript
  // file submitted with the study), its input shape, classes and labels.
  FederationModel model;
  int rounds = 10;
  TrainOptions train;
  bool secure_aggregation = true;
  // "off", "central" or "distributed", with the DP-FedAvg parameters that
  // a site charges to its ledger.
  std::string dp = "off";
  double dp_noise_multiplier = 1.0;
  double dp_clip_norm = 1.0;
  double dp_delta = 1e-5;
  // The fewest sites a round may have (the coordinator's key; a site reads
  // it to size its share of a statistics study's noise). 0: not set.
  int min_clients = 0;

  // A statistics study's noise: each site adds its share as one of at least
  // this many contributors (min_clients, and never fewer than 3).
  int dp_sites() const { return min_clients > 3 ? min_clients : 3; }
};

// Reads the keys of StudyManifest from `file` and checks them (name, kind,
// dataset, model, input shape, rounds, training options); leaves the other
// keys to the caller. kInvalidArgument naming the key and the file.
absl::Status ReadStudyManifest(ConfigFile& file, StudyManifest* out);

// Parses `text` as a site does: the keys above, and no check for others
// (they are the coordinator's, and the signature covers them all).
absl::StatusOr<StudyManifest> ParseStudyManifest(std::string_view text,
                                                 const std::string& source_name);

// OK for a built-in model name or a TorchScript file name ("resnet.pt", no
// directory: the file travels with the study); kInvalidArgument otherwise.
absl::Status CheckStudyModelName(const std::string& model);

// A study name: 1 to 64 letters, digits, '-', '_' or '.'.
absl::Status CheckStudyName(std::string_view name);

}  // namespace samverka
