// tests/integration/site_calls.h
// A test playing a site over gRPC: the calls the client daemon makes, one
// by one, so that tests can send exactly what they want.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/codec.h"
#include "common/wire.h"
#include "proto/federation.grpc.pb.h"

namespace samverka {

inline grpc::Status RegisterSite(v1::Federation::Stub& stub, int64_t train_samples = 10) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::RegisterRequest request;
  request.set_protocol_version(v1::PROTOCOL_VERSION_1);
  request.set_num_train_samples(train_samples);
  request.set_num_eval_samples(0);
  v1::RegisterResponse response;
  return stub.Register(&context, request, &response);
}

// Long-polls as a site until a task arrives (about two minutes at most);
// an empty task if none did.
inline v1::Task PollForTask(v1::Federation::Stub& stub) {
  for (int attempt = 0; attempt < 60; ++attempt) {
    grpc::ClientContext context;
    v1::PollTaskRequest request;
    request.set_protocol_version(v1::PROTOCOL_VERSION_1);
    request.set_wait_seconds(2);
    v1::PollTaskResponse response;
    grpc::Status status = stub.PollTask(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) break;
    if (response.has_task()) return response.task();
  }
  return v1::Task();
}

// The model with `digest`, downloaded in chunks of `chunk_bytes` (0: the
// coordinator's default); `after_chunk` runs after each chunk is read (a
// test's slow link). Empty on failure.
inline std::string DownloadModel(v1::Federation::Stub& stub, const std::string& digest,
                                 uint64_t chunk_bytes = 0,
                                 const std::function<void()>& after_chunk = nullptr) {
  grpc::ClientContext context;
  v1::DownloadModelRequest request;
  request.set_model_digest(digest);
  request.set_chunk_bytes(chunk_bytes);
  auto reader = stub.DownloadModel(&context, request);
  std::string model;
  v1::TensorChunk chunk;
  while (reader->Read(&chunk)) {
    if (model.empty()) model.reserve(chunk.total_bytes());
    model += chunk.data();
    if (after_chunk) after_chunk();
  }
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  return status.ok() ? model : std::string();
}

// The header of a training result for `task`, claiming `round`.
inline v1::UploadMessage ResultHeaderFor(const v1::Task& task, int64_t round) {
  v1::UploadMessage message;
  v1::ResultHeader* h = message.mutable_header();
  h->set_task_id(task.task_id());
  h->set_round(round);
  h->set_kind(v1::TASK_KIND_TRAIN);
  h->set_model_digest(task.model_digest());
  h->set_num_samples(10);
  return message;
}

// Chunk `index` of `pieces` of a payload whose SHA-256 is `digest`.
inline v1::UploadMessage ChunkMessage(const std::vector<std::string_view>& pieces, size_t index,
                                      const std::string& digest, size_t total_bytes) {
  v1::UploadMessage m;
  v1::TensorChunk* c = m.mutable_chunk();
  c->set_payload_digest(digest);
  c->set_index(index);
  c->set_total_chunks(pieces.size());
  c->set_total_bytes(total_bytes);
  c->set_data(std::string(pieces[index]));
  return m;
}

// A header and the chunks of `payload`, as messages.
inline std::vector<v1::UploadMessage> UploadOf(const v1::Task& task, const std::string& payload,
                                               int64_t round, size_t chunk = kChunkBytes) {
  std::vector<v1::UploadMessage> messages = {ResultHeaderFor(task, round)};
  const std::vector<std::string_view> pieces = SplitIntoChunks(payload, chunk);
  const std::string digest = Sha256Hex(payload);
  for (size_t i = 0; i < pieces.size(); ++i) {
    messages.push_back(ChunkMessage(pieces, i, digest, payload.size()));
  }
  return messages;
}

// Uploads `messages` (a header, then chunks) and returns the status.
inline grpc::Status Upload(v1::Federation::Stub& stub,
                           const std::vector<v1::UploadMessage>& messages) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::UploadResponse response;
  auto writer = stub.UploadResult(&context, &response);
  for (const auto& m : messages) {
    if (!writer->Write(m)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

// Uploads `payload` as the result of `task` in chunks of `chunk_bytes`,
// building each chunk message only when it is sent (a large payload is not
// held twice); `after_chunk` runs after each chunk is written.
inline grpc::Status StreamUpload(v1::Federation::Stub& stub, const v1::Task& task,
                                 const std::string& payload, std::chrono::seconds deadline,
                                 size_t chunk_bytes = kChunkBytes,
                                 const std::function<void()>& after_chunk = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  v1::UploadResponse response;
  auto writer = stub.UploadResult(&context, &response);
  const std::vector<std::string_view> pieces = SplitIntoChunks(payload, chunk_bytes);
  const std::string digest = Sha256Hex(payload);
  bool open = writer->Write(ResultHeaderFor(task, task.round()));
  for (size_t i = 0; open && i < pieces.size(); ++i) {
    open = writer->Write(ChunkMessage(pieces, i, digest, payload.size()));
    if (after_chunk) after_chunk();
  }
  writer->WritesDone();
  return writer->Finish();
}

}  // namespace samverka
