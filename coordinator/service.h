// coordinator/service.h
#pragma once

#include <memory>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "coordinator/coordinator.h"
#include "coordinator/federation/transfer_watch.h"
#include "coordinator/internal/upload_slots.h"
#include "proto/federation.grpc.pb.h"
#include "security/tls.h"

namespace samverka::coordinator {

// The gRPC face of a Coordinator: authenticates the caller from its verified
// client certificate, converts messages, and maps Status both ways. Its only
// state bounds how many uploads are assembled at once
// (CoordinatorOptions::max_concurrent_uploads). Thread-safe.
class FederationService final : public v1::Federation::Service {
 public:
  FederationService(Coordinator* coordinator, security::PeerAuthorizer* authorizer);

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status PollTask(grpc::ServerContext* context, const v1::PollTaskRequest* request,
                        v1::PollTaskResponse* response) override;
  grpc::Status DownloadModel(grpc::ServerContext* context,
                             const v1::DownloadModelRequest* request,
                             grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status UploadResult(grpc::ServerContext* context,
                            grpc::ServerReader<v1::UploadMessage>* reader,
                            v1::UploadResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status SecAggSend(grpc::ServerContext* context, const v1::SecAggSendRequest* request,
                          v1::SecAggSendResponse* response) override;
  grpc::Status SecAggFetch(grpc::ServerContext* context, const v1::SecAggFetchRequest* request,
                           v1::SecAggFetchResponse* response) override;
  grpc::Status GetStudy(grpc::ServerContext* context, const v1::GetStudyRequest* request,
                        v1::SignedStudy* response) override;
  grpc::Status DownloadModelFile(grpc::ServerContext* context,
                                 const v1::DownloadModelFileRequest* request,
                                 grpc::ServerWriter<v1::TensorChunk>* writer) override;

 private:
  Coordinator* coordinator_;
  security::PeerAuthorizer* authorizer_;
  internal::UploadSlots upload_slots_;
  // The same bound for model downloads: gRPC buffers what a stream has not
  // yet sent, so many concurrent downloads cost memory too.
  internal::UploadSlots download_slots_;
  // One upload and one download per site, and none that stops moving.
  TransferWatch transfers_;
};

// The site name of the caller, whose certificate gRPC has chain-verified,
// after the authorizer's checks (revocation, role, allow-list). A refusal is
// logged once here and returned as UNAUTHENTICATED / PERMISSION_DENIED.
absl::StatusOr<std::string> AuthorizeCaller(grpc::ServerContext* context,
                                            security::PeerAuthorizer* authorizer,
                                            std::set<security::Role> roles,
                                            Coordinator* coordinator);

// A stored study as sites and operators receive it.
v1::SignedStudy ToSignedStudy(const StudyRecord& study, const std::string& federation_id);

// Streams `payload` in chunks of `chunk_bytes` (clamped; 0: the default),
// calling `progress` after each chunk the peer took.
grpc::Status StreamChunks(const std::string& payload, const std::string& digest,
                          uint64_t chunk_bytes, grpc::ServerWriter<v1::TensorChunk>* writer,
                          const std::function<void()>& progress);

// Routes gRPC's own log lines (TLS handshake failures) into the
// "samverka.tls" logger, rewording the known refusals so an operator sees
// why a connection was refused. Call once at start-up.
void InstallGrpcLogHandler();

}  // namespace samverka::coordinator
