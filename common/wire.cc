#include "common/wire.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/peer_text.h"
#include "common/status_macros.h"

namespace samverka {

v1::TaskKind ToProto(TaskKind kind) {
  switch (kind) {
    case TaskKind::kTrain: return v1::TASK_KIND_TRAIN;
    case TaskKind::kEvaluate: return v1::TASK_KIND_EVALUATE;
    case TaskKind::kConsent: return v1::TASK_KIND_SECAGG_CONSENT;
    case TaskKind::kStatistics: return v1::TASK_KIND_STATISTICS;
  }
  return v1::TASK_KIND_UNSPECIFIED;
}

v1::Task ToProto(const ClientTask& task) {
  v1::Task out;
  out.set_task_id(task.task_id);
  out.set_round(task.round);
  out.set_kind(ToProto(task.kind));
  out.set_model_digest(task.model_digest);
  out.set_model(task.model);
  out.set_deadline_seconds(task.deadline_seconds);
  out.set_cohort_size(task.cohort_size);
  out.set_study_id(task.study_id);
  v1::TrainConfig* train = out.mutable_train();
  train->set_learning_rate(task.train.learning_rate);
  train->set_momentum(task.train.momentum);
  train->set_weight_decay(task.train.weight_decay);
  train->set_local_epochs(task.train.local_epochs);
  train->set_batch_size(task.train.batch_size);
  train->set_proximal_mu(task.train.proximal_mu);
  if (task.dp.clip_norm > 0) {
    v1::DpTask* dp = out.mutable_dp();
    dp->set_clip_norm(task.dp.clip_norm);
    dp->set_noise_multiplier(task.dp.noise_multiplier);
    dp->set_sampling_rate(task.dp.sampling_rate);
    dp->set_delta(task.dp.delta);
  }
  if (task.secure_aggregation.has_value()) {
    out.mutable_secure_aggregation()->set_round_config(task.secure_aggregation->round_config);
    out.mutable_secure_aggregation()->set_participant_id(task.secure_aggregation->participant_id);
    out.mutable_secure_aggregation()->set_consent_instance(
        task.secure_aggregation->consent_instance);
  }
  return out;
}

v1::ModelSpec ToProto(const FederationModel& model) {
  v1::ModelSpec out;
  out.set_model(model.model);
  for (int64_t d : model.input_shape) out.add_input_shape(d);
  out.set_num_classes(model.num_classes);
  for (const std::string& label : model.class_labels) out.add_class_labels(label);
  return out;
}

FederationModel FromProto(const v1::ModelSpec& spec) {
  FederationModel out;
  out.model = spec.model();
  out.input_shape.assign(spec.input_shape().begin(), spec.input_shape().end());
  out.num_classes = spec.num_classes();
  out.class_labels.assign(spec.class_labels().begin(), spec.class_labels().end());
  return out;
}

void SetOffer(const SiteOffer& offer, v1::RegisterRequest* request) {
  request->clear_sample_shape();
  for (int64_t d : offer.sample_shape) request->add_sample_shape(d);
  request->set_model_file(offer.model_file);
  request->set_cannot_serve_reason(offer.cannot_serve_reason);
}

SiteOffer OfferFromProto(const v1::RegisterRequest& request) {
  SiteOffer out;
  // Bounded: a peer's list is logged and compared, never trusted in size.
  for (int i = 0; i < std::min(request.sample_shape_size(), 8); ++i) {
    out.sample_shape.push_back(request.sample_shape(i));
  }
  out.model_file = request.model_file().substr(0, 256);
  out.cannot_serve_reason = request.cannot_serve_reason().substr(0, 1024);
  return out;
}

absl::StatusOr<ClientTask> FromProto(const v1::Task& task) {
  ClientTask out;
  out.task_id = task.task_id();
  out.round = task.round();
  switch (task.kind()) {
    case v1::TASK_KIND_TRAIN: out.kind = TaskKind::kTrain; break;
    case v1::TASK_KIND_EVALUATE: out.kind = TaskKind::kEvaluate; break;
    case v1::TASK_KIND_SECAGG_CONSENT: out.kind = TaskKind::kConsent; break;
    case v1::TASK_KIND_STATISTICS: out.kind = TaskKind::kStatistics; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("task ", task.task_id(), " has unknown kind ",
                                                     static_cast<int>(task.kind())));
  }
  out.model_digest = task.model_digest();
  out.model = task.model();
  out.deadline_seconds = task.deadline_seconds();
  out.cohort_size = task.cohort_size();
  out.study_id = task.study_id().substr(0, 64);
  out.train.learning_rate = task.train().learning_rate();
  out.train.momentum = task.train().momentum();
  out.train.weight_decay = task.train().weight_decay();
  out.train.local_epochs = task.train().local_epochs();
  out.train.batch_size = task.train().batch_size();
  out.train.proximal_mu = task.train().proximal_mu();
  if (task.has_dp()) {
    const v1::DpTask& dp = task.dp();
    if (!(dp.clip_norm() > 0) || !(dp.noise_multiplier() >= 0) || !(dp.sampling_rate() >= 0) ||
        !(dp.sampling_rate() <= 1) || !(dp.delta() >= 0) || !(dp.delta() < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task ", task.task_id(), " has invalid differential privacy settings"));
    }
    out.dp = DpOptions{dp.clip_norm(), dp.noise_multiplier(), dp.sampling_rate(), dp.delta()};
  }
  if (task.has_secure_aggregation()) {
    const v1::SecureAggregationTask& secure = task.secure_aggregation();
    const bool consent = task.kind() == v1::TASK_KIND_SECAGG_CONSENT;
    const bool masks = task.kind() == v1::TASK_KIND_TRAIN || task.kind() == v1::TASK_KIND_STATISTICS;
    if ((!masks && !consent) || secure.participant_id() == 0 ||
        (!consent && secure.round_config().empty()) ||
        consent != !secure.consent_instance().empty() || secure.consent_instance().size() > 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task ", task.task_id(), " has incomplete secure aggregation settings"));
    }
    out.secure_aggregation = SecureAggregationTask{secure.round_config(), secure.participant_id(),
                                                   secure.consent_instance()};
  } else if (task.kind() == v1::TASK_KIND_SECAGG_CONSENT) {
    return absl::InvalidArgumentError(
        absl::StrCat("consent task ", task.task_id(), " names no secure aggregation"));
  } else if (task.kind() == v1::TASK_KIND_STATISTICS) {
    // A site's statistics leave it only masked.
    return absl::InvalidArgumentError(
        absl::StrCat("statistics task ", task.task_id(), " names no secure aggregation"));
  }
  if (out.kind == TaskKind::kTrain) SV_RETURN_IF_ERROR(out.train.Validate());
  return out;
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  // The peer wrote the message: escaped before it can reach a log.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      PeerText(status.error_message(), 4096));
}

}  // namespace samverka
