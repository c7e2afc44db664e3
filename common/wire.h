// common/wire.h
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/task.h"
#include "proto/federation.pb.h"

namespace samverka {

// Conversions between the wire contract (proto/federation.proto) and the
// domain types both sides share, so the gRPC service and connector stay thin.
v1::Task ToProto(const ClientTask& task);
// kInvalidArgument for a task with an unknown kind or bad training options.
absl::StatusOr<ClientTask> FromProto(const v1::Task& task);
v1::TaskKind ToProto(TaskKind kind);
v1::ModelSpec ToProto(const FederationModel& model);
FederationModel FromProto(const v1::ModelSpec& spec);
// The offer's fields of a RegisterRequest, both ways.
void SetOffer(const SiteOffer& offer, v1::RegisterRequest* request);
SiteOffer OfferFromProto(const v1::RegisterRequest& request);

// absl::StatusCode values equal gRPC's codes, so these are lossless.
grpc::Status ToGrpc(const absl::Status& status);
absl::Status FromGrpc(const grpc::Status& status);

// Default size of a chunk on the wire, and the largest a peer may send.
inline constexpr size_t kChunkBytes = 1 << 20;
inline constexpr size_t kMaxChunkBytes = 4 << 20;

}  // namespace samverka
