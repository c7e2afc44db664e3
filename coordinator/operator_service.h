// coordinator/operator_service.h
#pragma once

#include <grpcpp/grpcpp.h>

#include "coordinator/coordinator.h"
#include "proto/federation.grpc.pb.h"
#include "security/tls.h"

namespace samverka::coordinator {

// The operators' gRPC face (`samverka status`, `samverka study ...`) over
// mutual TLS: only certificates with the operator role may call it (a site
// certificate gets PERMISSION_DENIED), and an operator certificate cannot
// act as a site on the Federation service. A submitted study's signer
// certificate must not be revoked either. Thread-safe.
class OperatorService final : public v1::Operator::Service {
 public:
  OperatorService(Coordinator* coordinator, security::PeerAuthorizer* authorizer);
  grpc::Status Status(grpc::ServerContext* context, const v1::StatusRequest* request,
                      v1::StatusResponse* response) override;
  grpc::Status SubmitStudy(grpc::ServerContext* context,
                           grpc::ServerReader<v1::SubmitStudyMessage>* reader,
                           v1::SubmitStudyResponse* response) override;
  grpc::Status ListStudies(grpc::ServerContext* context, const v1::ListStudiesRequest* request,
                           v1::ListStudiesResponse* response) override;
  grpc::Status ShowStudy(grpc::ServerContext* context, const v1::StudyRequest* request,
                         v1::ShowStudyResponse* response) override;
  grpc::Status AbortStudy(grpc::ServerContext* context, const v1::StudyRequest* request,
                          v1::AbortStudyResponse* response) override;
  grpc::Status ExportModel(grpc::ServerContext* context, const v1::ExportModelRequest* request,
                           grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status StudyMetrics(grpc::ServerContext* context, const v1::StudyRequest* request,
                            v1::StudyMetricsResponse* response) override;

 private:
  absl::StatusOr<std::string> Operator(grpc::ServerContext* context);

  Coordinator* coordinator_;
  security::PeerAuthorizer* authorizer_;
};

}  // namespace samverka::coordinator
