// client/daemon_calls.cc: the daemon's transfers (download, upload) and its
// calls of a secure sum (the stages, the consent task).
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/daemon.h"
#include "client/internal/daemon_util.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/peer_text.h"
#include "common/status_macros.h"
#include "common/wire.h"

namespace samverka::client {
using internal::Retryable;
using internal::Short;

absl::StatusOr<std::string> ClientDaemon::ReadChunks(grpc::ClientContext* context,
                                                     grpc::ClientReader<v1::TensorChunk>* reader,
                                                     uint64_t max_bytes) {
  ChunkAssembler assembler(kMaxChunkBytes, max_bytes);
  v1::TensorChunk chunk;
  absl::Status status;
  while (reader->Read(&chunk)) {
    if (chunk.index() == 0) assembler.Reserve(chunk.total_bytes());
    if (status = assembler.Add(chunk.index(), chunk.data()); !status.ok()) break;
  }
  if (status.ok()) {
    status = FromGrpc(reader->Finish());
  } else {
    context->TryCancel();
    reader->Finish().ok();
  }
  Forget(context);
  SV_RETURN_IF_ERROR(status);
  return assembler.Take();
}

absl::StatusOr<std::string> ClientDaemon::Download(const std::string& digest) {
  v1::DownloadModelRequest request;
  request.set_model_digest(digest);
  request.set_chunk_bytes(kChunkBytes);
  std::unique_ptr<grpc::ClientContext> context =
      NewContext(absl::Minutes(30), /*wait_for_connection=*/false);
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader = stub_->DownloadModel(context.get(), request);
  SV_ASSIGN_OR_RETURN(std::string model, ReadChunks(context.get(), reader.get(), uint64_t{64} << 30));
  if (Sha256Hex(model) != digest) {
    return absl::DataLossError(absl::StrCat("the downloaded model's SHA-256 is not the task's digest ",
                                            Short(digest), "; refusing to train on it"));
  }
  return model;
}

CallbackTransport ClientDaemon::TransportFor(const ClientTask& task) {
  CallbackTransport transport;
  transport.send = [this, task](SecureStage stage, std::string payload) {
    return SecAggSend(task, stage, std::move(payload));
  };
  transport.fetch = [this, task](SecureStage stage) { return SecAggFetch(task, stage); };
  transport.upload = [this, task](std::string payload, std::string commitment) {
    TaskOutcome masked{task.task_id, task.round, task.kind, task.model_digest};
    masked.update = std::move(payload);
    masked.masked = true;
    masked.consent_commitment = std::move(commitment);
    return Upload(masked, "");
  };
  return transport;
}

absl::Status ClientDaemon::ExecuteConsent(const ClientTask& task,
                                          const security::secagg::ContributionScope& scope) {
  auto log = Logger("client");
  CallbackTransport transport = TransportFor(task);
  const std::string& instance = task.secure_aggregation->consent_instance;
  absl::Status released =
      client::ReleaseConsent(*ledger_, scope, instance, task.round, &transport);
  if (released.code() == absl::StatusCode::kFailedPrecondition) {
    const std::string reason = absl::StrCat("site policy: ", released.message());
    log->warn("round {}: refused to release secure sum {}: {}", task.round, instance.substr(0, 16),
              reason);
    return Upload(TaskOutcome{task.task_id, task.round, task.kind, task.model_digest}, reason);
  }
  SV_RETURN_IF_ERROR(released);
  log->info("round {}: released its consent to secure sum {} (model {}), which the coordinator "
            "stored before it stopped; nothing else left the site",
            task.round, instance.substr(0, 16), Short(task.model_digest));
  return absl::OkStatus();
}

absl::Status ClientDaemon::SecAggSend(const ClientTask& task, SecureStage stage,
                                      std::string payload) {
  v1::SecAggSendRequest request;
  request.set_task_id(task.task_id);
  request.set_round(task.round);
  request.set_stage(static_cast<v1::SecAggStage>(static_cast<int>(stage) + 1));
  request.set_payload(std::move(payload));
  v1::SecAggSendResponse response;
  std::unique_ptr<grpc::ClientContext> context = NewContext(absl::Minutes(2));
  absl::Status status = FromGrpc(stub_->SecAggSend(context.get(), request, &response));
  Forget(context.get());
  return status;
}

absl::StatusOr<std::string> ClientDaemon::SecAggFetch(const ClientTask& task, SecureStage stage) {
  v1::SecAggFetchRequest request;
  request.set_task_id(task.task_id);
  request.set_round(task.round);
  request.set_stage(static_cast<v1::SecAggStage>(static_cast<int>(stage) + 1));
  request.set_wait_seconds(absl::ToDoubleSeconds(options_.poll_wait));
  // Long-polls until the coordinator closes the previous stage; a broken
  // connection is retried, anything the coordinator says is final.
  int failures = 0;
  while (!stop_.HasBeenNotified()) {
    v1::SecAggFetchResponse response;
    std::unique_ptr<grpc::ClientContext> context = NewContext(options_.poll_wait + absl::Seconds(10));
    absl::Status status = FromGrpc(stub_->SecAggFetch(context.get(), request, &response));
    Forget(context.get());
    if (status.ok()) {
      failures = 0;
      if (response.ready()) return std::move(*response.mutable_payload());
      continue;
    }
    if (status.code() != absl::StatusCode::kUnavailable || ++failures > 5) return status;
    stop_.WaitForNotificationWithTimeout(options_.initial_backoff * failures);
  }
  return absl::CancelledError("the daemon is stopping");
}

absl::Status ClientDaemon::Upload(const TaskOutcome& outcome, const std::string& failure_reason,
                                  bool refuses_study) {
  std::unique_ptr<grpc::ClientContext> context =
      NewContext(absl::Minutes(30), /*wait_for_connection=*/false);
  v1::UploadResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::UploadMessage>> writer =
      stub_->UploadResult(context.get(), &response);
  v1::UploadMessage message;
  v1::ResultHeader* header = message.mutable_header();
  header->set_task_id(outcome.task_id);
  header->set_round(outcome.round);
  header->set_kind(ToProto(outcome.kind));
  header->set_model_digest(outcome.model_digest);
  header->set_num_samples(outcome.num_samples);
  header->set_failure_reason(failure_reason);
  header->set_refuses_study(refuses_study);
  header->set_masked_input(outcome.masked);
  header->set_consent_commitment(outcome.consent_commitment);
  for (const auto& [name, value] : outcome.metrics) {
    v1::Metric* metric = header->add_metrics();
    metric->set_name(name);
    metric->set_value(value);
  }
  bool ok = writer->Write(message);
  const std::string digest = Sha256Hex(outcome.update);
  if (failure_reason.empty()) {
    const std::vector<std::string_view> chunks = SplitIntoChunks(outcome.update, kChunkBytes);
    for (size_t i = 0; ok && i < chunks.size(); ++i) {
      v1::UploadMessage piece;
      v1::TensorChunk* chunk = piece.mutable_chunk();
      chunk->set_payload_digest(digest);
      chunk->set_index(i);
      chunk->set_total_chunks(chunks.size());
      chunk->set_total_bytes(outcome.update.size());
      chunk->set_data(chunks[i].data(), chunks[i].size());
      ok = writer->Write(piece);
    }
  }
  writer->WritesDone();
  absl::Status status = FromGrpc(writer->Finish());
  Forget(context.get());
  SV_RETURN_IF_ERROR(status);
  auto log = Logger("client");
  if (!failure_reason.empty()) {
    log->warn("round {}: told the coordinator the task was not run: {}", outcome.round, failure_reason);
  } else if (outcome.masked) {
    log->info("round {}: sent a masked {} of {} bytes (sha256 {}); the coordinator can "
              "unmask only the sum over the sites",
              outcome.round, outcome.kind == TaskKind::kStatistics ? "statistics vector" : "update",
              outcome.update.size(), Short(digest));
  } else if (outcome.kind == TaskKind::kTrain) {
    log->info("round {}: sent a model update of {} bytes (sha256 {}) computed from {} samples",
              outcome.round, outcome.update.size(), Short(digest), outcome.num_samples);
  } else {
    log->info("round {}: sent evaluation metrics (loss, accuracy{}) over {} samples", outcome.round,
              outcome.metrics.contains("auc") ? ", auc" : "", outcome.num_samples);
  }
  return absl::OkStatus();
}

}  // namespace samverka::client
