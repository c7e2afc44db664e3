#include "coordinator/service.h"

#include <functional>

#include <grpc/support/log.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/codec.h"
#include "common/logging.h"
#include "common/peer_text.h"
#include "common/status_macros.h"
#include "common/wire.h"
#include "coordinator/reported_numbers.h"

namespace samverka::coordinator {
namespace {

using security::Role;

// The most metrics one result header may carry (a site sends a handful).
constexpr int kMaxMetrics = 64;

// What a cut transfer ends with (the site may not see it: its stream is
// cancelled).
grpc::Status StalledStatus(const char* what, absl::Duration limit) {
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                      absl::StrCat("the ", what, " stalled: no bytes moved for ",
                                   absl::ToInt64Seconds(limit), " s, so it was cut"));
}

// A transfer that takes a while gets a line when it starts (after its wait
// for a slot), so an operator sees what a slow round is doing.
void LogLongTransfer(const char* what, const std::string& site, int64_t round, size_t bytes) {
  if (bytes < (size_t{16} << 20)) return;
  const double mib = static_cast<double>(bytes) / (1 << 20);
  if (round >= 0) {
    Logger("coordinator")->info("round {}: {} {} ({:.1f} MiB)", round, what, site, mib);
  } else {
    Logger("coordinator")->info("{} {} ({:.1f} MiB)", what, site, mib);
  }
}

// Explains an OpenSSL handshake error from gRPC's log in an operator's words.
std::string ExplainHandshakeFailure(const std::string& message) {
  if (absl::StrContains(message, "peer did not return a certificate")) {
    return "refused a TLS connection: the client presented no certificate";
  }
  if (absl::StrContains(message, "wrong version number") ||
      absl::StrContains(message, "http request")) {
    return "refused a plaintext (non-TLS) connection";
  }
  if (absl::StrContains(message, "code 10") || absl::StrContains(message, "expired")) {
    return "refused a TLS connection: the client certificate has expired";
  }
  if (absl::StrContains(message, "certificate verify failed")) {
    return "refused a TLS connection: the client certificate does not verify against the "
           "federation CA (issued by another CA, expired or not yet valid)";
  }
  return "";
}

void GrpcLog(gpr_log_func_args* args) {
  static auto log = Logger("tls");
  const std::string message = args->message;
  const std::string explained = ExplainHandshakeFailure(message);
  if (!explained.empty()) {
    log->warn("{} ({})", explained, message);
  } else if (args->severity == GPR_LOG_SEVERITY_ERROR) {
    log->error("grpc: {}", message);
  } else {
    log->debug("grpc: {}", message);
  }
}

}  // namespace

void InstallGrpcLogHandler() { gpr_set_log_function(GrpcLog); }

absl::StatusOr<std::string> AuthorizeCaller(grpc::ServerContext* context,
                                            security::PeerAuthorizer* authorizer,
                                            std::set<Role> roles, Coordinator* coordinator) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  std::vector<grpc::string_ref> pem = auth ? auth->FindPropertyValues("x509_pem_cert")
                                           : std::vector<grpc::string_ref>{};
  absl::StatusOr<security::PeerIdentity> peer =
      pem.empty() ? absl::UnauthenticatedError("no client certificate")
                  : authorizer->Authorize(std::string_view(pem[0].data(), pem[0].size()), roles);
  if (!peer.ok()) {
    // Once a minute per host and reason in the log and the audit log; the
    // repeats are counted (a flood of refused calls is one row).
    if (coordinator == nullptr ||
        coordinator->AuditRefusal(context->peer(), std::string(peer.status().message()))) {
      Logger("coordinator")->warn("refused a call from {}: {}", context->peer(),
                                  peer.status().message());
    }
    return peer.status();
  }
  return peer->name;
}

FederationService::FederationService(Coordinator* coordinator,
                                     security::PeerAuthorizer* authorizer)
    : coordinator_(coordinator),
      authorizer_(authorizer),
      upload_slots_(coordinator->options().max_concurrent_uploads),
      download_slots_(coordinator->options().max_concurrent_downloads),
      transfers_(coordinator->options().transfer_stall,
                 std::min(coordinator->options().transfer_stall / 4, absl::Seconds(1))) {}

grpc::Status FederationService::Register(grpc::ServerContext* context,
                                         const v1::RegisterRequest* request,
                                         v1::RegisterResponse* response) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  if (request->protocol_version() != v1::PROTOCOL_VERSION_1) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("protocol version ", request->protocol_version(),
                                     " is not supported; this coordinator speaks version 1"));
  }
  // A site asking only what the federation trains checks its data itself
  // (its refusal names the file); a registration is checked here too.
  if (!request->check_only()) {
    absl::Status status = coordinator_->CheckSite(*site, OfferFromProto(*request));
    if (status.ok()) {
      std::map<std::string, SiteDataset> datasets;
      for (const v1::DatasetInfo& d : request->datasets()) {
        SiteDataset& dataset = datasets[d.name()];
        dataset = {d.num_train_samples(), d.num_eval_samples()};
        // Bounded: names only, checked by Register.
        for (int i = 0; i < std::min(d.columns_size(), 4096); ++i) {
          dataset.columns.push_back(d.columns(i).substr(0, 256));
        }
      }
      status = coordinator_->Register(*site, request->num_train_samples(),
                                      request->num_eval_samples(), std::move(datasets));
    }
    if (!status.ok()) return ToGrpc(status);
  }
  *response->mutable_model() = ToProto(coordinator_->model_spec());
  response->set_federation_id(coordinator_->options().federation_id);
  response->set_client_name(*site);
  response->set_heartbeat_interval_seconds(
      absl::ToDoubleSeconds(coordinator_->options().heartbeat_interval));
  return grpc::Status::OK;
}

grpc::Status FederationService::PollTask(grpc::ServerContext* context,
                                         const v1::PollTaskRequest* request,
                                         v1::PollTaskResponse* response) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  double wait = request->wait_seconds();
  if (!(wait >= 0)) wait = 0;
  // Answer before the client's own deadline runs out.
  const absl::Duration remaining =
      absl::FromChrono(context->deadline()) - absl::Now() - absl::Milliseconds(500);
  absl::StatusOr<PollResult> result = coordinator_->PollTask(
      *site, std::max(absl::ZeroDuration(), std::min(absl::Seconds(wait), remaining)));
  if (!result.ok()) return ToGrpc(result.status());
  response->set_federation_done(result->federation_done);
  if (result->task.has_value()) *response->mutable_task() = ToProto(*result->task);
  return grpc::Status::OK;
}

grpc::Status FederationService::DownloadModel(grpc::ServerContext* context,
                                              const v1::DownloadModelRequest* request,
                                              grpc::ServerWriter<v1::TensorChunk>* writer) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  // Only for a task of this site on this model, one at a time.
  absl::StatusOr<std::shared_ptr<const std::string>> model =
      coordinator_->ModelToDownload(*site, request->model_digest());
  if (!model.ok()) return ToGrpc(model.status());
  absl::StatusOr<std::unique_ptr<TransferWatch::Transfer>> transfer = transfers_.Begin(
      *site, TransferWatch::Kind::kDownload, [context] { context->TryCancel(); });
  if (!transfer.ok()) return ToGrpc(transfer.status());
  // Admission control, as for uploads; waiting keeps the site alive.
  internal::UploadSlot slot;
  while (!slot.TryAcquireFor(&download_slots_, absl::Seconds(1))) {
    if (context->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client gave up waiting to download");
    }
    coordinator_->Touch(*site);
  }
  (*transfer)->Progress();  // with a slot, the chunks must move
  LogLongTransfer("sending the model to", *site, -1, (*model)->size());
  size_t chunk_bytes = request->chunk_bytes() == 0 ? kChunkBytes : request->chunk_bytes();
  chunk_bytes = std::clamp<size_t>(chunk_bytes, 64 << 10, kMaxChunkBytes);
  const std::vector<std::string_view> chunks = SplitIntoChunks(**model, chunk_bytes);
  for (size_t i = 0; i < chunks.size(); ++i) {
    v1::TensorChunk chunk;
    chunk.set_payload_digest(request->model_digest());
    chunk.set_index(i);
    chunk.set_total_chunks(chunks.size());
    chunk.set_total_bytes((*model)->size());
    chunk.set_data(chunks[i].data(), chunks[i].size());
    if (!writer->Write(chunk)) {
      if ((*transfer)->cut()) return StalledStatus("download", transfers_.stall_limit());
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away during the download");
    }
    (*transfer)->Progress();
    // A chunk the site took is a sign of life: a download of minutes on a
    // slow link never makes the site look silent. Write blocks while the
    // site does not read, so a stalled stream stops counting.
    coordinator_->Touch(*site);
  }
  return grpc::Status::OK;
}

namespace {

// Reads an upload's chunks into `sink` (a ChunkAssembler or an
// UpdateReceiver): every chunk in order, all declaring the same payload
// digest and chunk count, which the last one must reach. `on_first` sees
// the first chunk's declared total size; `on_chunk` runs after each chunk
// (the site is alive while its bytes arrive). Returns the declared digest.
template <typename Sink, typename OnFirst>
absl::StatusOr<std::string> ReadChunks(grpc::ServerReader<v1::UploadMessage>* reader, Sink& sink,
                                       OnFirst on_first, const std::function<void()>& on_chunk) {
  v1::UploadMessage message;
  std::string digest;
  uint64_t total_chunks = 0;
  while (reader->Read(&message)) {
    if (!message.has_chunk()) return absl::InvalidArgumentError("a second header in one upload");
    const v1::TensorChunk& chunk = message.chunk();
    if (sink.chunks() == 0) {
      digest = chunk.payload_digest();
      total_chunks = chunk.total_chunks();
      SV_RETURN_IF_ERROR(on_first(chunk.total_bytes()));
    } else if (chunk.payload_digest() != digest || chunk.total_chunks() != total_chunks) {
      return absl::InvalidArgumentError("chunks of one upload disagree on the payload");
    }
    SV_RETURN_IF_ERROR(sink.Add(chunk.index(), chunk.data()));
    on_chunk();
  }
  if (sink.chunks() != total_chunks) {
    return absl::InvalidArgumentError(
        absl::StrCat("upload ended after ", sink.chunks(), " of ", total_chunks, " chunks"));
  }
  return digest;
}

// A plain update, decoded as it streams in: one model's worth of floats,
// never the assembled bytes next to a decoded copy.
absl::StatusOr<ReceivedUpdate> ReceiveUpdate(grpc::ServerReader<v1::UploadMessage>* reader,
                                             const std::string& model,
                                             const std::function<void()>& on_chunk) {
  SV_ASSIGN_OR_RETURN(std::unique_ptr<UpdateReceiver> receiver,
                      UpdateReceiver::Create(model, kMaxChunkBytes));
  on_chunk();  // the site waited while the receiver was set up
  SV_ASSIGN_OR_RETURN(std::string digest,
                      ReadChunks(reader, *receiver, [&](uint64_t declared) {
                        return receiver->CheckDeclaredSize(declared);
                      }, on_chunk));
  ReceivedUpdate update;
  update.bytes = receiver->size();
  SV_ASSIGN_OR_RETURN(update.values, receiver->Finish(digest));
  update.digest = std::move(digest);
  return update;
}

// Any other result (a masked input, an evaluation's empty payload),
// assembled; `limit` bounds its size.
absl::StatusOr<std::string> ReceivePayload(grpc::ServerReader<v1::UploadMessage>* reader,
                                           uint64_t limit, bool check_digest,
                                           const std::function<void()>& on_chunk) {
  ChunkAssembler assembler(kMaxChunkBytes, limit);
  SV_ASSIGN_OR_RETURN(std::string digest, ReadChunks(reader, assembler, [&](uint64_t declared) {
                        assembler.Reserve(declared);
                        return absl::OkStatus();
                      }, on_chunk));
  std::string payload = assembler.Take();
  if (check_digest && Sha256Hex(payload) != digest) {
    return absl::DataLossError(
        "the update's SHA-256 does not match the digest its chunks declare");
  }
  return payload;
}

}  // namespace

v1::SignedStudy ToSignedStudy(const StudyRecord& study, const std::string& federation_id) {
  v1::SignedStudy out;
  out.set_study_id(study.id);
  out.set_manifest(study.manifest);
  out.set_model_sha256(study.model_sha256);
  out.set_model_bytes(static_cast<uint64_t>(study.model_bytes));
  out.set_federation_id(federation_id);
  out.set_submitted_unix_ms(study.submitted_unix_ms);
  out.set_nonce(study.nonce);
  out.set_operator_certificate(study.operator_certificate);
  out.set_signature(study.signature);
  return out;
}

grpc::Status StreamChunks(const std::string& payload, const std::string& digest,
                          uint64_t chunk_bytes, grpc::ServerWriter<v1::TensorChunk>* writer,
                          const std::function<void()>& progress) {
  size_t size = chunk_bytes == 0 ? kChunkBytes : chunk_bytes;
  size = std::clamp<size_t>(size, 64 << 10, kMaxChunkBytes);
  const std::vector<std::string_view> chunks = SplitIntoChunks(payload, size);
  for (size_t i = 0; i < chunks.size(); ++i) {
    v1::TensorChunk chunk;
    chunk.set_payload_digest(digest);
    chunk.set_index(i);
    chunk.set_total_chunks(chunks.size());
    chunk.set_total_bytes(payload.size());
    chunk.set_data(chunks[i].data(), chunks[i].size());
    if (!writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the peer went away during the transfer");
    }
    progress();
  }
  return grpc::Status::OK;
}

grpc::Status FederationService::GetStudy(grpc::ServerContext* context,
                                         const v1::GetStudyRequest* request,
                                         v1::SignedStudy* response) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  absl::StatusOr<StudyRecord> study = coordinator_->StudyForSite(*site, request->study_id());
  if (!study.ok()) return ToGrpc(study.status());
  *response = ToSignedStudy(*study, coordinator_->options().federation_id);
  return grpc::Status::OK;
}

grpc::Status FederationService::DownloadModelFile(grpc::ServerContext* context,
                                                  const v1::DownloadModelFileRequest* request,
                                                  grpc::ServerWriter<v1::TensorChunk>* writer) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  absl::StatusOr<std::shared_ptr<const std::string>> file =
      coordinator_->ModelFile(*site, request->model_sha256());
  if (!file.ok()) return ToGrpc(file.status());
  absl::StatusOr<std::unique_ptr<TransferWatch::Transfer>> transfer = transfers_.Begin(
      *site, TransferWatch::Kind::kDownload, [context] { context->TryCancel(); });
  if (!transfer.ok()) return ToGrpc(transfer.status());
  (*transfer)->Progress();
  return StreamChunks(**file, request->model_sha256(), request->chunk_bytes(), writer,
                      [&] {
                        (*transfer)->Progress();
                        coordinator_->Touch(*site);
                      });
}

grpc::Status FederationService::UploadResult(grpc::ServerContext* context,
                                             grpc::ServerReader<v1::UploadMessage>* reader,
                                             v1::UploadResponse* response) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  v1::UploadMessage message;
  if (!reader->Read(&message) || !message.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "an upload must start with a result header");
  }
  const v1::ResultHeader header = message.header();
  if (!header.failure_reason().empty()) {
    // Escaped once here, so the log, the round's failure reason, `samverka
    // status` and the audit log all get text that cannot forge a line.
    const std::string reason = PeerText(header.failure_reason(), 1024);
    Logger("coordinator")->warn("round {}: {} did not run task {}: {}", header.round(), *site,
                                PeerText(header.task_id(), 64), reason);
    coordinator_->ReportTaskFailure(*site, header.task_id(), reason, header.refuses_study());
    response->set_accepted(false);
    return grpc::Status::OK;
  }
  TaskOutcome outcome;
  outcome.task_id = header.task_id();
  outcome.round = header.round();
  outcome.kind = header.kind() == v1::TASK_KIND_EVALUATE     ? TaskKind::kEvaluate
                 : header.kind() == v1::TASK_KIND_STATISTICS ? TaskKind::kStatistics
                                                             : TaskKind::kTrain;
  outcome.model_digest = header.model_digest();
  outcome.num_samples = header.num_samples();
  outcome.masked = header.masked_input();
  outcome.consent_commitment = header.consent_commitment().substr(0, 128);
  for (const v1::Metric& m : header.metrics()) outcome.metrics[m.name()] = m.value();
  auto reject = [&](const absl::Status& status) {
    Logger("coordinator")->warn("round {}: rejected the result of {}: {}", header.round(), *site,
                                status.message());
    return ToGrpc(status);
  };
  // Refused before a byte of it is read if the task is not open.
  if (absl::Status expected = coordinator_->ExpectResult(*site, outcome); !expected.ok()) {
    return reject(expected);
  }
  // Self-declared numbers are range-checked before anything counts them.
  if (header.metrics_size() > kMaxMetrics) {
    return reject(absl::InvalidArgumentError(absl::StrCat(
        "a result header with ", header.metrics_size(), " metrics; at most ", kMaxMetrics)));
  }
  std::vector<std::string> dropped;
  if (absl::Status bounded = CheckResultMetrics(outcome.kind, &outcome.metrics, &dropped);
      !bounded.ok()) {
    return reject(bounded);
  }
  if (!dropped.empty()) {
    // A few names, so the line stays short whatever the site sends.
    const size_t shown = std::min<size_t>(dropped.size(), 5);
    Logger("coordinator")->warn(
        "round {}: ignored {} metric(s) of {} this coordinator does not know: {}{}", header.round(),
        dropped.size(), *site, absl::StrJoin(dropped.begin(), dropped.begin() + shown, ", "),
        dropped.size() > shown ? ", ..." : "");
  }
  // What bounds the payload: the model (training, evaluation), or the
  // statistics study's vector.
  std::shared_ptr<const std::string> model;
  uint64_t bound_bytes = 0;
  if (outcome.kind == TaskKind::kStatistics) {
    bound_bytes = coordinator_->StatisticsVectorBytes();
  } else {
    absl::StatusOr<std::shared_ptr<const std::string>> found =
        coordinator_->Model(outcome.model_digest);
    if (!found.ok()) return reject(found.status());
    model = *std::move(found);
    bound_bytes = model->size();
  }
  // Admission control: read the chunks only with a slot, so at most
  // max_concurrent_uploads updates are in memory at once; the other senders
  // are held back by flow control. Waiting counts as a heartbeat, so a
  // queued site is not taken for offline.
  absl::StatusOr<std::unique_ptr<TransferWatch::Transfer>> transfer = transfers_.Begin(
      *site, TransferWatch::Kind::kUpload, [context] { context->TryCancel(); });
  if (!transfer.ok()) return reject(transfer.status());
  internal::UploadSlot slot;
  while (!slot.TryAcquireFor(&upload_slots_, absl::Seconds(1))) {
    if (context->IsCancelled()) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client gave up waiting to upload");
    }
    coordinator_->Heartbeat(*site, header.task_id());
  }
  // With a slot, the chunks must move: a stalled stream is cut.
  (*transfer)->Progress();
  LogLongTransfer("receiving the update of", *site, header.round(), bound_bytes);
  ReceivedUpdate received;
  const std::function<void()> alive = [&] {
    coordinator_->Touch(*site);
    (*transfer)->Progress();
  };
  auto reject_read = [&](const absl::Status& status) {
    if ((*transfer)->cut()) {
      Logger("coordinator")->warn("round {}: the upload of {} stalled and was cut", header.round(), *site);
      return StalledStatus("upload", transfers_.stall_limit());
    }
    return reject(status);
  };
  // Setting up the receiver of a large update takes a while; the site was
  // waiting meanwhile, not silent.
  alive();
  if (outcome.kind == TaskKind::kTrain && !outcome.masked) {
    absl::StatusOr<ReceivedUpdate> update = ReceiveUpdate(reader, *model, alive);
    if (!update.ok()) return reject_read(update.status());
    received = std::move(*update);
  } else {
    // A masked input has one ring element (4 or 8 bytes) per parameter.
    const uint64_t limit = (outcome.masked ? 2 : 1) * bound_bytes + (64 << 10);
    absl::StatusOr<std::string> payload =
        ReceivePayload(reader, limit,
                       outcome.kind == TaskKind::kTrain || outcome.kind == TaskKind::kStatistics,
                       alive);
    if (!payload.ok()) return reject_read(payload.status());
    outcome.update = std::move(*payload);
  }
  if (absl::Status status = coordinator_->SubmitResult(*site, outcome, std::move(received));
      !status.ok()) {
    return reject(status);
  }
  response->set_accepted(true);
  return grpc::Status::OK;
}

grpc::Status FederationService::Heartbeat(grpc::ServerContext* context,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  response->set_task_active(coordinator_->Heartbeat(*site, request->task_id()));
  return grpc::Status::OK;
}

namespace {

absl::StatusOr<SecureStage> StageFromProto(v1::SecAggStage stage) {
  switch (stage) {
    case v1::SECAGG_STAGE_ADVERTISE_KEYS: return SecureStage::kAdvertiseKeys;
    case v1::SECAGG_STAGE_SHARE_KEYS: return SecureStage::kShareKeys;
    case v1::SECAGG_STAGE_MASKED_INPUT: return SecureStage::kMaskedInput;
    case v1::SECAGG_STAGE_UNMASK: return SecureStage::kUnmask;
    case v1::SECAGG_STAGE_CONSENT: return SecureStage::kConsent;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown secure aggregation stage ", static_cast<int>(stage)));
  }
}

}  // namespace

grpc::Status FederationService::SecAggSend(grpc::ServerContext* context,
                                           const v1::SecAggSendRequest* request,
                                           v1::SecAggSendResponse*) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  absl::StatusOr<SecureStage> stage = StageFromProto(request->stage());
  if (!stage.ok()) return ToGrpc(stage.status());
  absl::Status status =
      coordinator_->SecAggSend(*site, request->task_id(), *stage, request->payload());
  if (!status.ok()) {
    Logger("coordinator")->warn("round {}: refused the '{}' message of {}: {}", request->round(),
                                SecureStageName(*stage), *site, status.message());
  }
  return ToGrpc(status);
}

grpc::Status FederationService::SecAggFetch(grpc::ServerContext* context,
                                            const v1::SecAggFetchRequest* request,
                                            v1::SecAggFetchResponse* response) {
  absl::StatusOr<std::string> site = AuthorizeCaller(context, authorizer_, {Role::kClient}, coordinator_);
  if (!site.ok()) return ToGrpc(site.status());
  absl::StatusOr<SecureStage> stage = StageFromProto(request->stage());
  if (!stage.ok()) return ToGrpc(stage.status());
  double wait = request->wait_seconds();
  if (!(wait >= 0)) wait = 0;
  const absl::Duration remaining =
      absl::FromChrono(context->deadline()) - absl::Now() - absl::Milliseconds(500);
  absl::StatusOr<std::optional<std::string>> got = coordinator_->SecAggFetch(
      *site, request->task_id(), *stage,
      std::max(absl::ZeroDuration(), std::min(absl::Seconds(wait), remaining)));
  if (!got.ok()) return ToGrpc(got.status());
  response->set_ready(got->has_value());
  if (got->has_value()) response->set_payload(std::move(**got));
  return grpc::Status::OK;
}

}  // namespace samverka::coordinator
