// coordinator/server.h
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "coordinator/coordinator.h"
#include "coordinator/operator_service.h"
#include "coordinator/service.h"
#include "security/tls.h"

namespace samverka::coordinator {

// coordinator.toml: the coordinator's options plus how it serves.
struct CoordinatorConfig {
  CoordinatorOptions coordinator;
  // host:port to listen on; port 0 picks a free port (see
  // CoordinatorServer::port and STATE_DIR/coordinator.port).
  std::string listen = "0.0.0.0:50051";
  security::TlsFiles tls;
  std::string crl;
  // Sites (certificate names) allowed to join; empty allows every site
  // with a certificate of the federation CA.
  std::vector<std::string> allowed_clients;
  // gRPC's HTTP/2 BDP probing grows each stream's receive window; good for
  // throughput over long-distance links, but uploads queued for an upload
  // slot then park several MB each in gRPC's buffers. false bounds memory.
  bool bdp_probe = true;
};

// Reads coordinator.toml. Relative paths are resolved against the file's
// directory. Unknown keys and wrong types are errors naming key and file.
absl::StatusOr<CoordinatorConfig> LoadCoordinatorConfig(const std::string& path);

// A coordinator serving over mutual TLS: the Federation and Operator
// services on one gRPC server, and the round loop. Thread-safe Stop().
class CoordinatorServer {
 public:
  // Starts listening; kInvalidArgument / kNotFound for bad configuration,
  // kUnavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorConfig config);
  ~CoordinatorServer();

  int port() const { return port_; }
  Coordinator& coordinator() { return *coordinator_; }
  // Runs rounds until the federation is done or Stop(); then shuts the
  // server down after a short grace period for clients to hear "done".
  absl::Status Run();
  void Stop();

 private:
  CoordinatorServer() = default;

  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<security::PeerAuthorizer> authorizer_;
  std::unique_ptr<FederationService> federation_;
  std::unique_ptr<OperatorService> operator_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace samverka::coordinator
