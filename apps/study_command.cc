// `samverka study`: an operator's studies on a standing federation, over the
// coordinator's mutual-TLS port with the operator certificate. `submit`
// signs the manifest (and the model file's SHA-256) with the operator's key
// here, before anything leaves this machine.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "common/codec.h"
#include "common/model_names.h"
#include "common/wire.h"
#include "common/study_manifest.h"
#include "coordinator/model_helper.h"
#include "fmt/format.h"
#include "statistics/spec.h"
#include "statistics/summary.h"
#include "proto/federation.grpc.pb.h"
#include "security/pki.h"
#include "security/signed_study.h"
#include "security/tls.h"

namespace samverka::apps {
namespace {

namespace fs = std::filesystem;

// How `samverka study` reaches the coordinator.
struct OperatorFlags {
  std::string coordinator;
  security::TlsFiles tls;
  std::string server_name;
};

void AddOperatorFlags(CLI::App* cmd, OperatorFlags& f) {
  cmd->add_option("--coordinator", f.coordinator, "host:port")->required();
  cmd->add_option("--ca", f.tls.ca_certificate, "federation CA certificate")->required();
  cmd->add_option("--cert", f.tls.certificate, "operator certificate")->required();
  cmd->add_option("--key", f.tls.private_key, "operator private key")->required();
  cmd->add_option("--server-name", f.server_name, "name in the coordinator's certificate, if not the host");
}

absl::StatusOr<std::unique_ptr<v1::Operator::Stub>> Connect(const OperatorFlags& f) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security::MakeChannelCredentials(f.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  if (!f.server_name.empty()) args.SetSslTargetNameOverride(f.server_name);
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::Operator::NewStub(grpc::CreateCustomChannel(f.coordinator, *credentials, args));
}

void Deadline(grpc::ClientContext* context, absl::Duration d) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

void Failed(const char* what, const grpc::Status& status) {
  Fail(fmt::format("{}: {}", what, status.error_message()));
}

// One of the Operator service's calls about study `id`; false (after
// saying what failed) if it could not be made or was refused.
template <typename Response>
bool CallForStudy(const OperatorFlags& flags, const std::string& id,
                  grpc::Status (v1::Operator::Stub::*method)(grpc::ClientContext*,
                                                             const v1::StudyRequest&, Response*),
                  const char* what, Response* response) {
  auto stub = Connect(flags);
  if (!stub.ok()) {
    Fail(stub.status().message());
    return false;
  }
  grpc::ClientContext context;
  Deadline(&context, absl::Seconds(30));
  v1::StudyRequest request;
  request.set_study_id(id);
  grpc::Status status = ((**stub).*method)(&context, request, response);
  if (!status.ok()) {
    Failed(what, status);
    return false;
  }
  return true;
}

std::string When(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

void AddSubmit(CLI::App* study) {
  CLI::App* cmd = study->add_subcommand("submit", "Sign a study manifest with the operator key and submit it");
  auto flags = std::make_shared<OperatorFlags>();
  auto manifest_path = std::make_shared<std::string>();
  auto model_file = std::make_shared<std::string>();
  cmd->add_option("FILE", *manifest_path, "study.toml")->required();
  cmd->add_option("--model-file", *model_file, "the TorchScript file the manifest's model names");
  AddOperatorFlags(cmd, *flags);
  cmd->callback([flags, manifest_path, model_file] {
    absl::StatusOr<std::string> manifest = security::ReadFileToString(*manifest_path);
    if (!manifest.ok()) return Fail(manifest.status().message());
    // The operator sees a bad manifest here, before signing anything; the
    // coordinator checks it again with every key.
    absl::StatusOr<StudyManifest> parsed = ParseStudyManifest(*manifest, *manifest_path);
    if (!parsed.ok()) return Fail(parsed.status().message());
    if (parsed->statistics()) {
      if (absl::Status spec = statistics::ReadManifestStatistics(*manifest, *manifest_path).status();
          !spec.ok()) {
        return Fail(spec.message());
      }
    }
    std::string model_bytes;
    if (!model_file->empty()) {
      absl::StatusOr<std::string> bytes = security::ReadFileToString(*model_file);
      if (!bytes.ok()) return Fail(bytes.status().message());
      if (fs::path(*model_file).filename().string() != parsed->model.model) {
        return Fail(fmt::format("{}: model = \"{}\", but --model-file is {}; name the file in model",
                                *manifest_path, parsed->model.model, *model_file));
      }
      model_bytes = *std::move(bytes);
    } else if (LooksLikeModelFile(parsed->model.model)) {
      return Fail(fmt::format("{}: model = \"{}\" is a TorchScript file; pass it with --model-file",
                              *manifest_path, parsed->model.model));
    }
    absl::StatusOr<std::string> cert = security::ReadFileToString(flags->tls.certificate);
    if (!cert.ok()) return Fail(cert.status().message());
    absl::StatusOr<security::PeerIdentity> me = security::ParsePeerCertificate(*cert);
    if (!me.ok()) return Fail(me.status().message());
    absl::StatusOr<std::string> key_text = security::ReadFileToString(flags->tls.private_key);
    if (!key_text.ok()) return Fail(key_text.status().message());
    const security::SecretBytes key_pem = security::SecretBytes::CopyFrom(*key_text);
    OPENSSL_cleanse(key_text->data(), key_text->size());
    absl::StatusOr<security::SigningKey> key = security::SigningKey::FromPem(key_pem);
    if (!key.ok()) return Fail(key.status().message());
    security::StudyEnvelope envelope = security::NewStudyEnvelope(
        me->federation, *manifest, model_bytes.empty() ? "" : Sha256Hex(model_bytes));
    absl::StatusOr<std::string> signature = security::SignStudy(envelope, *key);
    if (!signature.ok()) return Fail(signature.status().message());
    auto stub = Connect(*flags);
    if (!stub.ok()) return Fail(stub.status().message());
    grpc::ClientContext context;
    Deadline(&context, absl::Minutes(10));
    v1::SubmitStudyResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::SubmitStudyMessage>> writer =
        (*stub)->SubmitStudy(&context, &response);
    v1::SubmitStudyMessage first;
    v1::SignedStudy* s = first.mutable_study();
    s->set_manifest(envelope.manifest);
    s->set_model_sha256(envelope.model_sha256);
    s->set_model_bytes(model_bytes.size());
    s->set_federation_id(envelope.federation_id);
    s->set_submitted_unix_ms(envelope.submitted_unix_ms);
    s->set_nonce(envelope.nonce);
    s->set_operator_certificate(*cert);
    s->set_signature(*signature);
    bool sent = writer->Write(first);
    const std::vector<std::string_view> chunks = SplitIntoChunks(model_bytes, kChunkBytes);
    for (size_t i = 0; sent && !model_bytes.empty() && i < chunks.size(); ++i) {
      v1::SubmitStudyMessage m;
      m.mutable_model_chunk()->set_index(i);
      m.mutable_model_chunk()->set_total_chunks(chunks.size());
      m.mutable_model_chunk()->set_total_bytes(model_bytes.size());
      m.mutable_model_chunk()->set_payload_digest(envelope.model_sha256);
      m.mutable_model_chunk()->set_data(chunks[i].data(), chunks[i].size());
      sent = writer->Write(m);
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) return Failed("the coordinator refused the study", status);
    std::printf("study %s ('%s') submitted: %s\n", response.study_id().c_str(),
                parsed->name.c_str(), response.state().c_str());
  });
}

void PrintSummary(const v1::StudySummary& s) {
  std::printf("%-16s %-20s %-9s %-10s %-14s %5d  %s\n", s.study_id().c_str(),
              s.name().substr(0, 20).c_str(), s.state().c_str(), s.dataset().substr(0, 10).c_str(),
              s.model().substr(0, 14).c_str(), s.rounds(), s.submitted_by().c_str());
}

void AddList(CLI::App* study) {
  CLI::App* cmd = study->add_subcommand("list", "List the federation's studies");
  auto flags = std::make_shared<OperatorFlags>();
  AddOperatorFlags(cmd, *flags);
  cmd->callback([flags] {
    auto stub = Connect(*flags);
    if (!stub.ok()) return Fail(stub.status().message());
    grpc::ClientContext context;
    Deadline(&context, absl::Seconds(15));
    v1::ListStudiesResponse response;
    grpc::Status status = (*stub)->ListStudies(&context, v1::ListStudiesRequest(), &response);
    if (!status.ok()) return Failed("list failed", status);
    std::printf("%-16s %-20s %-9s %-10s %-14s %5s  %s\n", "id", "name", "state", "dataset", "model",
                "rounds", "submitted by");
    for (const v1::StudySummary& s : response.studies()) PrintSummary(s);
  });
}

void AddShow(CLI::App* study) {
  CLI::App* cmd = study->add_subcommand("show", "A study's state, rounds, metrics, sites and refusals");
  auto flags = std::make_shared<OperatorFlags>();
  auto id = std::make_shared<std::string>();
  cmd->add_option("ID", *id, "study id")->required();
  AddOperatorFlags(cmd, *flags);
  cmd->callback([flags, id] {
    v1::ShowStudyResponse r;
    if (!CallForStudy(*flags, *id, &v1::Operator::Stub::ShowStudy, "show failed", &r)) return;
    const v1::StudySummary& s = r.study();
    std::printf("study %s '%s' (%s on data set %s, model %s)\n", s.study_id().c_str(),
                s.name().c_str(), s.kind().c_str(), s.dataset().c_str(), s.model().c_str());
    std::printf("state: %s%s\n", s.state().c_str(),
                s.reason().empty() ? "" : fmt::format(" ({})", s.reason()).c_str());
    std::printf("submitted by %s at %s\n", s.submitted_by().c_str(), When(s.submitted_unix_ms()).c_str());
    std::printf("rounds: %lld of %d recorded, %lld committed\n", static_cast<long long>(s.rounds_done()),
                s.rounds(), static_cast<long long>(s.rounds_committed()));
    if (s.epsilon() > 0) std::printf("epsilon spent: %.4f\n", s.epsilon());
    std::printf("sites that took part:");
    for (const std::string& site : r.sites()) std::printf(" %s", site.c_str());
    std::printf("\n%-6s %-10s %-6s %-17s %s\n", "round", "state", "sites", "model", "metrics");
    for (auto it = r.rounds().rbegin(); it != r.rounds().rend(); ++it) {
      std::string metrics;
      for (const v1::Metric& m : it->metrics()) metrics += fmt::format("{}={:.4f} ", m.name(), m.value());
      std::printf("%-6lld %-10s %-6d %-17s %s\n", static_cast<long long>(it->round()),
                  it->state().substr(0, 10).c_str(), it->clients(),
                  it->model_digest().substr(0, 16).c_str(), metrics.c_str());
    }
    if (!r.statistics_json().empty()) {
      const nlohmann::json released =
          nlohmann::json::parse(r.statistics_json(), nullptr, /*allow_exceptions=*/false);
      if (released.is_discarded()) return Fail("the coordinator sent statistics that are not JSON");
      std::printf("statistics (counts below min_count suppressed: -):\n%s",
                  statistics::SummaryText(released).c_str());
    }
    if (r.refusals_size() > 0) {
      std::printf("refused or not run by sites (newest last):\n");
      for (const v1::StudyRefusal& x : r.refusals()) {
        // Escaped once by the coordinator where it received them.
        std::printf("  round %-5lld %-20s %s\n", static_cast<long long>(x.round()), x.site().c_str(),
                    x.reason().c_str());
      }
    }
  });
}

void AddAbort(CLI::App* study) {
  CLI::App* cmd = study->add_subcommand("abort", "Abort a queued or running study");
  auto flags = std::make_shared<OperatorFlags>();
  auto id = std::make_shared<std::string>();
  cmd->add_option("ID", *id, "study id")->required();
  AddOperatorFlags(cmd, *flags);
  cmd->callback([flags, id] {
    v1::AbortStudyResponse response;
    if (!CallForStudy(*flags, *id, &v1::Operator::Stub::AbortStudy, "abort failed", &response)) {
      return;
    }
    std::printf("study %s: %s\n", id->c_str(), response.state().c_str());
  });
}

void AddExport(CLI::App* study) {
  CLI::App* cmd = study->add_subcommand("export", "Write a study's model (TorchScript .pt, or .svtb)");
  auto flags = std::make_shared<OperatorFlags>();
  auto id = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto round = std::make_shared<int64_t>(0);
  auto model_file = std::make_shared<std::string>();
  cmd->add_option("ID", *id, "study id")->required();
  auto format = std::make_shared<std::string>();
  cmd->add_option("--out", *out,
                  "output file: .pt (TorchScript) or .svtb (parameters); a statistics study: "
                  ".json or .csv")
      ->required();
  cmd->add_option("--round", *round, "round to export (default: the last committed)");
  cmd->add_option("--model-file", *model_file,
                  "the study's TorchScript file (for a study that brought one)");
  cmd->add_option("--format", *format, "a statistics study: json or csv (default: from --out)")
      ->check(CLI::IsMember({"json", "csv"}));
  AddOperatorFlags(cmd, *flags);
  cmd->callback([flags, id, out, round, model_file, format] {
    v1::ShowStudyResponse shown;
    if (!CallForStudy(*flags, *id, &v1::Operator::Stub::ShowStudy, "export failed", &shown)) return;
    if (shown.study().kind() == "statistics") {
      if (shown.statistics_json().empty()) {
        return Fail(fmt::format("study {} has released no statistics ({})", *id,
                                shown.study().state()));
      }
      const nlohmann::json released =
          nlohmann::json::parse(shown.statistics_json(), nullptr, /*allow_exceptions=*/false);
      if (released.is_discarded()) return Fail("the coordinator sent statistics that are not JSON");
      const bool csv = *format == "csv" || (format->empty() && out->ends_with(".csv"));
      std::ofstream file(*out, std::ios::trunc);
      file << (csv ? statistics::SummaryCsv(released) : released.dump(2) + "\n");
      if (!file.good()) return Fail(fmt::format("cannot write {}", *out));
      std::printf("exported the statistics of study %s (%s) to %s\n", id->c_str(),
                  csv ? "csv" : "json", out->c_str());
      return;
    }
    auto stub = Connect(*flags);
    if (!stub.ok()) return Fail(stub.status().message());
    grpc::ClientContext context;
    Deadline(&context, absl::Minutes(30));
    v1::ExportModelRequest request;
    request.set_study_id(*id);
    request.set_round(*round);
    std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader = (*stub)->ExportModel(&context, request);
    ChunkAssembler assembler(kMaxChunkBytes, uint64_t{4} << 30);
    std::string digest;
    v1::TensorChunk chunk;
    while (reader->Read(&chunk)) {
      digest = chunk.payload_digest();
      if (absl::Status s = assembler.Add(chunk.index(), chunk.data()); !s.ok()) return Fail(s.message());
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return Failed("export failed", status);
    const std::string bundle = assembler.Take();
    if (Sha256Hex(bundle) != digest) return Fail("the exported model does not match its SHA-256");
    if (out->ends_with(".svtb")) {
      std::ofstream(*out, std::ios::binary | std::ios::trunc) << bundle;
    } else {
      absl::StatusOr<StudyManifest> manifest = ParseStudyManifest(shown.manifest(), "the study");
      if (!manifest.ok()) return Fail(manifest.status().message());
      std::string model = manifest->model.model;
      if (LooksLikeModelFile(model)) {
        if (model_file->empty()) {
          return Fail(fmt::format("study {} trains the TorchScript model {}; pass that file with "
                                  "--model-file, or export --out FILE.svtb", *id, model));
        }
        model = *model_file;
      }
      coordinator::ModelHelperOptions helper{coordinator::DefaultModelHelperPath(), model,
                                             manifest->model.input_shape,
                                             manifest->model.num_classes, 0, absl::Minutes(10)};
      if (absl::Status s = coordinator::SaveTorchScript(helper, bundle, *out); !s.ok()) {
        return Fail(s.message());
      }
    }
    std::printf("exported study %s (model %s) to %s\n", id->c_str(), digest.substr(0, 16).c_str(),
                out->c_str());
  });
}

void AddMetrics(CLI::App* study) {
  CLI::App* cmd = study->add_subcommand("metrics", "A study's metrics per round (JSON lines or CSV)");
  auto flags = std::make_shared<OperatorFlags>();
  auto id = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("jsonl");
  cmd->add_option("ID", *id, "study id")->required();
  cmd->add_option("--format", *format, "jsonl or csv")->check(CLI::IsMember({"jsonl", "csv"}));
  AddOperatorFlags(cmd, *flags);
  cmd->callback([flags, id, format] {
    v1::StudyMetricsResponse response;
    if (!CallForStudy(*flags, *id, &v1::Operator::Stub::StudyMetrics, "metrics failed", &response)) {
      return;
    }
    if (*format == "jsonl") {
      for (const std::string& row : response.rows()) std::printf("%s\n", row.c_str());
      return;
    }
    // CSV with the columns in the order of the first row.
    std::vector<std::string> columns;
    for (const std::string& row : response.rows()) {
      const nlohmann::json j = nlohmann::json::parse(row, nullptr, false);
      if (!j.is_object()) continue;
      if (columns.empty()) {
        for (auto it = j.begin(); it != j.end(); ++it) columns.push_back(it.key());
        std::string header;
        for (const std::string& c : columns) header += (header.empty() ? "" : ",") + c;
        std::printf("%s\n", header.c_str());
      }
      std::string line;
      for (size_t i = 0; i < columns.size(); ++i) {
        if (i > 0) line += ",";
        if (!j.contains(columns[i]) || j[columns[i]].is_null()) continue;
        line += j[columns[i]].is_string() ? j[columns[i]].get<std::string>() : j[columns[i]].dump();
      }
      std::printf("%s\n", line.c_str());
    }
  });
}

}  // namespace

void AddStudyCommand(CLI::App& app) {
  CLI::App* study = app.add_subcommand("study", "Submit and follow studies on a standing federation (operator certificate)");
  study->require_subcommand(1);
  AddSubmit(study);
  AddList(study);
  AddShow(study);
  AddAbort(study);
  AddExport(study);
  AddMetrics(study);
}

}  // namespace samverka::apps
