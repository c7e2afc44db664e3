// client/daemon_studies.cc: the daemon's studies: fetched once, verified
// (signature, signer, CRL), cached; a study's TorchScript file, downloaded
// and checked by its signed SHA-256.
#include <filesystem>
#include <fstream>
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

absl::StatusOr<FetchedStudy> ClientDaemon::FetchStudy(const std::string& id) {
  v1::GetStudyRequest request;
  request.set_study_id(id);
  v1::SignedStudy response;
  std::unique_ptr<grpc::ClientContext> context = NewContext(absl::Seconds(30));
  absl::Status status = FromGrpc(stub_->GetStudy(context.get(), request, &response));
  Forget(context.get());
  SV_RETURN_IF_ERROR(status);
  FetchedStudy study;
  study.study_id = response.study_id();
  study.envelope.federation_id = response.federation_id();
  study.envelope.manifest = response.manifest();
  study.envelope.model_sha256 = response.model_sha256();
  study.envelope.submitted_unix_ms = response.submitted_unix_ms();
  study.envelope.nonce = response.nonce();
  study.model_bytes = response.model_bytes();
  study.operator_certificate = response.operator_certificate();
  study.signature = response.signature();
  return study;
}

absl::StatusOr<const VerifiedStudy*> ClientDaemon::StudyFor(const std::string& id) {
  if (auto it = studies_.find(id); it != studies_.end()) return &it->second;
  if (auto it = refused_studies_.find(id); it != refused_studies_.end()) return it->second;
  absl::StatusOr<FetchedStudy> fetched = FetchStudy(id);
  if (!fetched.ok()) {
    // NOT_FOUND or a broken call: nothing was decided; the next task asks again.
    return absl::UnavailableError(
        absl::StrCat("could not fetch study ", PeerText(id, 64), ": ", fetched.status().message()));
  }
  if (fetched->study_id != id) {
    absl::Status wrong = absl::UnauthenticatedError(absl::StrCat(
        "the coordinator answered with another study (", PeerText(fetched->study_id, 64), ")"));
    refused_studies_.emplace(id, wrong);
    return wrong;
  }
  // The CRL is read for every new study, so a revocation published to the
  // site takes effect without a restart.
  std::optional<security::RevocationList> crl;
  if (!options_.crl.empty()) {
    absl::StatusOr<security::RevocationList> loaded = security::LoadCrl(options_.crl, site_.ca_pem);
    if (!loaded.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot check study ", PeerText(id, 64),
                                                 ": this site's tls.crl: ",
                                                 loaded.status().message()));
    }
    crl = *std::move(loaded);
  }
  const StudyTrust trust{site_.ca_pem, crl.has_value() ? &*crl : nullptr, site_.federation_id,
                         options_.allowed_operators};
  const absl::Time now = absl::Now();
  absl::StatusOr<VerifiedStudy> verified = VerifyStudy(*fetched, trust, now);
  if (!verified.ok()) {
    // An expired CRL is this site's to fix; the study may be fine then.
    if (!(crl.has_value() && crl->IsExpired(now))) refused_studies_.emplace(id, verified.status());
    return verified.status();
  }
  Logger("client")->info("study {} ('{}', data set '{}', {}{}) is signed by operator {}",
                         id, verified->manifest.name, verified->manifest.dataset,
                         verified->manifest.statistics()
                             ? std::string("statistics")
                             : absl::StrCat("model '", verified->manifest.model.model, "'"),
                         verified->model_sha256.empty()
                             ? std::string()
                             : absl::StrCat(", sha256 ", Short(verified->model_sha256)),
                         verified->operator_name);
  return &studies_.emplace(id, *std::move(verified)).first->second;
}

absl::StatusOr<std::string> ClientDaemon::ModelFile(const VerifiedStudy& study) {
  const std::filesystem::path dir = std::filesystem::path(options_.state_dir) / "models";
  const std::string path = (dir / (study.model_sha256 + ".pt")).string();
  if (checked_model_files_.contains(study.model_sha256)) return path;
  if (std::filesystem::exists(path)) {
    // Checked once per run: a file altered on disk is never loaded.
    SV_ASSIGN_OR_RETURN(std::string bytes, security::ReadFileToString(path));
    if (Sha256Hex(bytes) == study.model_sha256) {
      checked_model_files_.insert(study.model_sha256);
      return path;
    }
    Logger("client")->warn("{} does not hold the bytes its name says; downloading it again", path);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  v1::DownloadModelFileRequest request;
  request.set_model_sha256(study.model_sha256);
  request.set_chunk_bytes(kChunkBytes);
  std::unique_ptr<grpc::ClientContext> context =
      NewContext(absl::Minutes(30), /*wait_for_connection=*/false);
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
      stub_->DownloadModelFile(context.get(), request);
  // model_bytes is not signed: a bound, never trusted beyond 8 GiB.
  const uint64_t limit = std::min<uint64_t>(
      study.model_bytes > 0 ? study.model_bytes : uint64_t{8} << 30, uint64_t{8} << 30);
  SV_ASSIGN_OR_RETURN(std::string bytes, ReadChunks(context.get(), reader.get(), limit));
  if (Sha256Hex(bytes) != study.model_sha256) {
    return absl::DataLossError(absl::StrCat(
        "the downloaded model file's SHA-256 is not the one signed with study ", study.study_id));
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  checked_model_files_.insert(study.model_sha256);
  Logger("client")->info("study {}: downloaded its TorchScript model ({} bytes, sha256 {}) to {}",
                         study.study_id, bytes.size(), Short(study.model_sha256), path);
  return path;
}

}  // namespace samverka::client
