// coordinator/operator_service.cc
#include "coordinator/operator_service.h"

#include "absl/strings/str_cat.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/wire.h"
#include "coordinator/service.h"

namespace samverka::coordinator {
namespace {

using security::Role;

// A TorchScript file travels with its study; this bounds what one
// submission may make the coordinator hold.
constexpr uint64_t kMaxModelFileBytes = uint64_t{2} << 30;

void FillSummary(const StudyRecord& s, v1::StudySummary* out) {
  out->set_study_id(s.id);
  out->set_name(s.name);
  out->set_kind(s.kind);
  out->set_dataset(s.dataset);
  out->set_state(s.state);
  out->set_submitted_by(s.submitted_by);
  out->set_submitted_unix_ms(s.submitted_unix_ms);
  out->set_rounds(s.rounds);
  out->set_model(s.model);
  out->set_reason(s.reason);
}

void FillRound(const RoundRecord& r, v1::RoundSummary* summary) {
  summary->set_round(r.round);
  summary->set_state(r.succeeded ? "succeeded" : "failed: " + r.failure_reason);
  summary->set_clients(static_cast<int32_t>(r.participants.size()));
  summary->set_model_digest(r.model_digest);
  for (const auto& [name, value] : r.metrics) {
    v1::Metric* m = summary->add_metrics();
    m->set_name(name);
    m->set_value(value);
  }
}

}  // namespace

absl::StatusOr<std::string> OperatorService::Operator(grpc::ServerContext* context) {
  return AuthorizeCaller(context, authorizer_, {Role::kOperator}, coordinator_);
}

OperatorService::OperatorService(Coordinator* coordinator, security::PeerAuthorizer* authorizer)
    : coordinator_(coordinator), authorizer_(authorizer) {}

grpc::Status OperatorService::Status(grpc::ServerContext* context, const v1::StatusRequest*,
                                     v1::StatusResponse* response) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  CoordinatorStatus status = coordinator_->Status();
  response->set_federation_id(status.federation_id);
  response->set_active_study(status.active_study);
  response->set_current_round(status.next_round);
  for (const ClientInfo& c : status.clients) {
    if (c.online) response->add_clients_online(c.name);
  }
  for (const TaskRefusal& r : status.refusals) {
    v1::TaskRefusal* refusal = response->add_refusals();
    refusal->set_site(r.site);
    refusal->set_round(r.round);
    refusal->set_reason(r.reason);
  }
  for (const RoundRecord& r : status.recent_rounds) FillRound(r, response->add_rounds());
  return grpc::Status::OK;
}


grpc::Status OperatorService::SubmitStudy(grpc::ServerContext* context,
                                          grpc::ServerReader<v1::SubmitStudyMessage>* reader,
                                          v1::SubmitStudyResponse* response) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  v1::SubmitStudyMessage message;
  if (!reader->Read(&message) || !message.has_study()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a submission must start with the signed study");
  }
  const v1::SignedStudy study = message.study();
  if (study.federation_id() != coordinator_->options().federation_id) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("the study is signed for federation '", study.federation_id(),
                                     "', not '", coordinator_->options().federation_id, "'"));
  }
  // The signer (who may differ from the caller) must not be revoked.
  absl::StatusOr<security::PeerIdentity> signer =
      authorizer_->Authorize(study.operator_certificate(), {Role::kOperator});
  if (!signer.ok()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("the study's signer: ", signer.status().message()));
  }
  ChunkAssembler file(kMaxChunkBytes, kMaxModelFileBytes);
  if (study.model_bytes() > kMaxModelFileBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the model file is larger than 2 GiB");
  }
  file.Reserve(study.model_bytes());
  while (reader->Read(&message)) {
    if (!message.has_model_chunk()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a second study in one submission");
    }
    if (absl::Status added = file.Add(message.model_chunk().index(), message.model_chunk().data());
        !added.ok()) {
      return ToGrpc(added);
    }
  }
  StudySubmission submission;
  submission.manifest = study.manifest();
  submission.model_sha256 = study.model_sha256();
  submission.submitted_unix_ms = study.submitted_unix_ms();
  submission.nonce = study.nonce();
  submission.operator_certificate = study.operator_certificate();
  submission.signature = study.signature();
  submission.model_file = file.Take();
  absl::StatusOr<StudyRecord> stored = coordinator_->SubmitStudy(std::move(submission));
  if (!stored.ok()) {
    Logger("coordinator")->warn("refused a study from {}: {}", *who, stored.status().message());
    return ToGrpc(stored.status());
  }
  response->set_study_id(stored->id);
  response->set_state(stored->state);
  return grpc::Status::OK;
}

grpc::Status OperatorService::ListStudies(grpc::ServerContext* context,
                                          const v1::ListStudiesRequest*,
                                          v1::ListStudiesResponse* response) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  absl::StatusOr<std::vector<StudyRecord>> studies = coordinator_->Studies();
  if (!studies.ok()) return ToGrpc(studies.status());
  for (const StudyRecord& s : *studies) FillSummary(s, response->add_studies());
  return grpc::Status::OK;
}

grpc::Status OperatorService::ShowStudy(grpc::ServerContext* context,
                                        const v1::StudyRequest* request,
                                        v1::ShowStudyResponse* response) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  absl::StatusOr<StudyDetails> details = coordinator_->ShowStudy(request->study_id());
  if (!details.ok()) return ToGrpc(details.status());
  FillSummary(details->record, response->mutable_study());
  int64_t committed = 0;
  for (const RoundRecord& r : details->rounds) committed += r.succeeded ? 1 : 0;
  response->mutable_study()->set_rounds_done(static_cast<int64_t>(details->rounds.size()));
  response->mutable_study()->set_rounds_committed(committed);
  response->mutable_study()->set_epsilon(details->epsilon);
  response->set_manifest(details->record.manifest);
  for (const RoundRecord& r : details->rounds) FillRound(r, response->add_rounds());
  for (const std::string& site : details->sites) response->add_sites(site);
  response->set_statistics_json(details->statistics_json);
  for (const TaskRefusal& r : details->refusals) {
    v1::StudyRefusal* refusal = response->add_refusals();
    refusal->set_site(r.site);
    refusal->set_round(r.round);
    refusal->set_reason(r.reason);
  }
  return grpc::Status::OK;
}

grpc::Status OperatorService::AbortStudy(grpc::ServerContext* context,
                                         const v1::StudyRequest* request,
                                         v1::AbortStudyResponse* response) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  absl::StatusOr<std::string> state = coordinator_->AbortStudy(request->study_id(), *who);
  if (!state.ok()) return ToGrpc(state.status());
  response->set_state(*state);
  return grpc::Status::OK;
}

grpc::Status OperatorService::ExportModel(grpc::ServerContext* context,
                                          const v1::ExportModelRequest* request,
                                          grpc::ServerWriter<v1::TensorChunk>* writer) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  absl::StatusOr<Checkpoint> checkpoint =
      coordinator_->ExportModel(request->study_id(), request->round());
  if (!checkpoint.ok()) return ToGrpc(checkpoint.status());
  return StreamChunks(checkpoint->encoded_model, checkpoint->model_digest, request->chunk_bytes(),
                      writer, [] {});
}

grpc::Status OperatorService::StudyMetrics(grpc::ServerContext* context,
                                           const v1::StudyRequest* request,
                                           v1::StudyMetricsResponse* response) {
  absl::StatusOr<std::string> who = Operator(context);
  if (!who.ok()) return ToGrpc(who.status());
  absl::StatusOr<std::vector<std::string>> rows = coordinator_->StudyMetrics(request->study_id());
  if (!rows.ok()) return ToGrpc(rows.status());
  for (std::string& row : *rows) response->add_rows(std::move(row));
  return grpc::Status::OK;
}

}  // namespace samverka::coordinator
