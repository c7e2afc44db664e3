// bench/coordinator_scale.cc
//
// End-to-end scale benchmark (STYLE 10): one real `samverka coordinator`
// process over mutual TLS on loopback, and N client threads in this process
// (one gRPC channel and one site certificate each) that Register, PollTask,
// DownloadModel and UploadResult a synthetic update of a ~10M-parameter
// TorchScript model (nn.Linear(1000, 10000) made with /usr/bin/python3 and
// torch). Prints the round's wall time and the coordinator's peak RSS
// (VmHWM) next to the bound of the issue: 3 x model size + 200 MB.
//
//   coordinator_scale [--samverka PATH] [--clients 50] [--in 1000] [--out 10000]
//                     [--max-uploads N] [--keep]
//
// PATH defaults to ../apps/samverka next to this binary; --max-uploads sets
// the coordinator's max_concurrent_uploads (default: its own default, 2). Everything lives in
// a temporary directory that is removed at the end (unless --keep).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/codec.h"
#include "common/wire.h"
#include "proto/federation.grpc.pb.h"
#include "security/tls.h"

namespace samverka::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Distinct synthetic updates; client i sends variant i % kVariants. The
// coordinator cannot tell them from N distinct ones (it checks digest,
// layout and finiteness), and this keeps the bench's own memory small.
constexpr int kVariants = 8;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "coordinator_scale: %s\n", message.c_str());
  std::exit(1);
}

// Runs `argv` to completion with output appended to `log`; dies on failure.
void RunOrDie(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) {
    std::FILE* out = std::fopen(log.c_str(), "a");
    if (out != nullptr) {
      dup2(fileno(out), 1);
      dup2(fileno(out), 2);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("'" + argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + "' failed; see " + log.string());
  }
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A field of /proc/PID/status in kB ("VmHWM", "VmRSS"); -1 if unreadable.
int64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atoll(line.c_str() + field.size() + 1);
  }
  return -1;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

struct Shared {
  fs::path pki;
  int port = 0;
  int variants = kVariants;
  // Set by the first client to finish its download, from its copy.
  absl::Notification updates_ready;
  std::vector<std::string> updates;
  std::vector<std::string> update_digests;
  std::atomic<bool> keeper_taken{false};
  std::atomic<int> failures{0};
  // Uploads start once every client has its model, so that the memory of
  // the two phases can be told apart.
  std::atomic<int> downloaded{0};
  absl::Notification all_downloaded;
  int clients = 0;
  std::atomic<int> accepted{0};
  absl::Mutex mutex;
  Clock::time_point first_task ABSL_GUARDED_BY(mutex) = Clock::time_point::max();
  Clock::time_point last_accepted ABSL_GUARDED_BY(mutex) = Clock::time_point::min();
  uint64_t model_bytes = 0;
};

void BuildUpdates(Shared& shared, const std::string& model) {
  absl::StatusOr<ModelParameters> global = DecodeParameters(model);
  if (!global.ok()) Die("cannot decode the downloaded model: " + std::string(global.status().message()));
  ModelParameters update{global->layout, {}};
  global->values = {};
  for (int v = 0; v < shared.variants; ++v) {
    std::mt19937 rng(1234 + v);
    std::uniform_real_distribution<float> small(-1e-3f, 1e-3f);
    update.values.resize(update.layout.num_elements());
    for (float& x : update.values) x = small(rng);
    shared.updates.push_back(EncodeParameters(update));
    shared.update_digests.push_back(Sha256Hex(shared.updates.back()));
  }
  shared.updates_ready.Notify();
}

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// One site: Register, PollTask until a task arrives, DownloadModel (hashed
// as it streams; only the first downloader keeps the bytes), UploadResult.
void RunClient(int index, Shared& shared) {
  const std::string name = "site-" + std::to_string(index);
  bool counted = false;  // in shared.downloaded
  bool keeper = false;   // builds the updates for everyone
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), what.c_str());
    ++shared.failures;
    if (keeper && !shared.updates_ready.HasBeenNotified()) shared.updates_ready.Notify();
    if (!counted && ++shared.downloaded == shared.clients) shared.all_downloaded.Notify();
  };
  const fs::path dir = shared.pki / "sites" / name;
  security::TlsFiles tls{(dir / "ca.crt").string(), (dir / (name + ".crt")).string(),
                         (dir / (name + ".key")).string()};
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      security::MakeChannelCredentials(tls);
  if (!credentials.ok()) return fail(std::string(credentials.status().message()));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("coordinator");
  args.SetMaxReceiveMessageSize(static_cast<int>(kMaxChunkBytes + (1 << 20)));
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per site
  auto stub = v1::Federation::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(shared.port), *credentials, args));

  v1::RegisterRequest reg;
  reg.set_protocol_version(v1::PROTOCOL_VERSION_1);
  reg.set_num_train_samples(100);
  reg.set_client_version("coordinator_scale");
  v1::RegisterResponse registered;
  grpc::Status status = stub->Register(Context(absl::Seconds(60)).get(), reg, &registered);
  if (!status.ok()) return fail("Register: " + status.error_message());

  v1::Task task;
  while (true) {
    v1::PollTaskRequest poll;
    poll.set_protocol_version(v1::PROTOCOL_VERSION_1);
    poll.set_wait_seconds(20);
    v1::PollTaskResponse response;
    status = stub->PollTask(Context(absl::Seconds(30)).get(), poll, &response);
    if (!status.ok()) return fail("PollTask: " + status.error_message());
    if (response.federation_done()) return fail("the federation ended before a task arrived");
    if (response.has_task()) {
      task = response.task();
      break;
    }
  }
  {
    absl::MutexLock lock(&shared.mutex);
    shared.first_task = std::min(shared.first_task, Clock::now());
  }

  keeper = !shared.keeper_taken.exchange(true);
  v1::DownloadModelRequest download;
  download.set_model_digest(task.model_digest());
  download.set_chunk_bytes(kChunkBytes);
  auto context = Context(absl::Minutes(30));
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader =
      stub->DownloadModel(context.get(), download);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  std::string model;
  uint64_t received = 0;
  v1::TensorChunk chunk;
  while (reader->Read(&chunk)) {
    EVP_DigestUpdate(sha.get(), chunk.data().data(), chunk.data().size());
    received += chunk.data().size();
    if (keeper) model.append(chunk.data());
  }
  status = reader->Finish();
  if (!status.ok()) return fail("DownloadModel: " + status.error_message());
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_DigestFinal_ex(sha.get(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex.push_back(kHex[b >> 4]);
    hex.push_back(kHex[b & 15]);
  }
  if (hex != task.model_digest()) return fail("the downloaded model's digest does not match");
  if (keeper) {
    shared.model_bytes = received;
    BuildUpdates(shared, model);
    model = {};
  }
  shared.updates_ready.WaitForNotification();
  if (shared.updates.empty()) return fail("no update to send: the first downloader failed");
  counted = true;
  if (++shared.downloaded == shared.clients) shared.all_downloaded.Notify();
  shared.all_downloaded.WaitForNotification();

  const std::string& update = shared.updates[index % shared.variants];
  const std::string& update_digest = shared.update_digests[index % shared.variants];
  auto upload_context = Context(absl::Minutes(30));
  v1::UploadResponse accepted;
  std::unique_ptr<grpc::ClientWriter<v1::UploadMessage>> writer =
      stub->UploadResult(upload_context.get(), &accepted);
  v1::UploadMessage message;
  v1::ResultHeader* header = message.mutable_header();
  header->set_task_id(task.task_id());
  header->set_round(task.round());
  header->set_kind(v1::TASK_KIND_TRAIN);
  header->set_model_digest(task.model_digest());
  header->set_num_samples(100);
  v1::Metric* loss = header->add_metrics();
  loss->set_name("train_loss");
  loss->set_value(1.0);
  bool ok = writer->Write(message);
  const std::vector<std::string_view> chunks = SplitIntoChunks(update, kChunkBytes);
  for (size_t i = 0; ok && i < chunks.size(); ++i) {
    v1::UploadMessage piece;
    v1::TensorChunk* c = piece.mutable_chunk();
    c->set_payload_digest(update_digest);
    c->set_index(i);
    c->set_total_chunks(chunks.size());
    c->set_total_bytes(update.size());
    c->set_data(chunks[i].data(), chunks[i].size());
    ok = writer->Write(piece);
  }
  writer->WritesDone();
  status = writer->Finish();
  if (!status.ok()) return fail("UploadResult: " + status.error_message());
  if (!accepted.accepted()) return fail("the update was not accepted");
  ++shared.accepted;
  absl::MutexLock lock(&shared.mutex);
  shared.last_accepted = std::max(shared.last_accepted, Clock::now());
}

}  // namespace
}  // namespace samverka::bench

int main(int argc, char** argv) {
  using namespace samverka::bench;  // NOLINT: a benchmark's main
  namespace fs = std::filesystem;
  fs::path samverka = fs::canonical("/proc/self/exe").parent_path().parent_path() / "apps" / "samverka";
  int clients = 50, in_features = 1000, out_features = 10000;
  int max_uploads = 0;  // 0: the coordinator's default
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--samverka") samverka = next();
    else if (arg == "--clients") clients = std::stoi(next());
    else if (arg == "--in") in_features = std::stoi(next());
    else if (arg == "--out") out_features = std::stoi(next());
    else if (arg == "--max-uploads") max_uploads = std::stoi(next());
    else if (arg == "--keep") keep = true;
    else Die("unknown argument " + arg);
  }
  if (!fs::is_regular_file(samverka)) Die(samverka.string() + " not found; pass --samverka PATH");
  samverka = fs::absolute(samverka);

  char dir_template[] = "/tmp/samverka-scale-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("mkdtemp failed");
  const fs::path tmp = dir_template;
  const fs::path log = tmp / "setup.log";

  // The model: nn.Linear(in, out), scripted.
  const fs::path model = tmp / "linear.pt";
  {
    std::ofstream py(tmp / "make_model.py");
    py << "import sys, torch\n"
          "torch.manual_seed(0)\n"
          "m = torch.jit.script(torch.nn.Linear(int(sys.argv[1]), int(sys.argv[2])))\n"
          "m.save(sys.argv[3])\n";
  }
  RunOrDie({"/usr/bin/python3", (tmp / "make_model.py").string(), std::to_string(in_features),
            std::to_string(out_features), model.string()},
           log);
  const int64_t parameters = int64_t{in_features} * out_features + out_features;

  // The PKI: CA, coordinator certificate, one client certificate per site.
  Shared shared;
  shared.pki = tmp / "pki";
  const std::string sv = samverka.string();
  RunOrDie({sv, "pki", "init", "--dir", shared.pki.string(), "--federation", "scale"}, log);
  RunOrDie({sv, "pki", "issue", "--dir", shared.pki.string(), "--name", "coordinator", "--role",
            "coordinator", "--san", "127.0.0.1", "--san", "localhost"},
           log);
  for (int i = 0; i < clients; ++i) {
    RunOrDie({sv, "pki", "issue", "--dir", shared.pki.string(), "--name",
              "site-" + std::to_string(i)},
             log);
  }

  const fs::path state = tmp / "state";
  const fs::path config = tmp / "coordinator.toml";
  {
    const fs::path c = shared.pki / "sites" / "coordinator";
    std::ofstream toml(config);
    toml << "federation_id = \"scale\"\n"
         << "listen = \"127.0.0.1:0\"\n"
         << "state_dir = \"" << state.string() << "\"\n"
         << "rounds = 1\n"
         << "model = \"" << model.string() << "\"\n"
         << "input_shape = [" << in_features << "]\n"
         << "num_classes = " << out_features << "\n"
         << "clients_per_round = " << clients << "\n"
         << "min_clients = " << clients << "\n"
         << "federated_evaluation = false\n"
         << "train_deadline_seconds = 3600\n"
         << "heartbeat_seconds = 30\n"
         << "bdp_probe = false\n"
         // The bench's clients upload plain updates (the coordinator's
         // memory for plain aggregation; secure rounds hold one masked
         // vector per upload slot plus the running sum).
         << "secure_aggregation = false\n"
         << (max_uploads > 0 ? "max_concurrent_uploads = " + std::to_string(max_uploads) + "\n" : "")
         << "[tls]\n"
         << "ca_certificate = \"" << (c / "ca.crt").string() << "\"\n"
         << "certificate = \"" << (c / "coordinator.crt").string() << "\"\n"
         << "private_key = \"" << (c / "coordinator.key").string() << "\"\n"
         << "crl = \"" << (shared.pki / "ca" / "crl.pem").string() << "\"\n";
  }
  fs::create_directories(state);

  const fs::path coordinator_log = tmp / "coordinator.log";
  pid_t coordinator = fork();
  if (coordinator < 0) Die("fork failed");
  if (coordinator == 0) {
    std::FILE* out = std::fopen(coordinator_log.c_str(), "w");
    if (out != nullptr) {
      dup2(fileno(out), 1);
      dup2(fileno(out), 2);
    }
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execl(sv.c_str(), sv.c_str(), "coordinator", "--config", config.c_str(), nullptr);
    _exit(127);
  }
  auto stop_coordinator = [&] {
    kill(coordinator, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(coordinator, nullptr, WNOHANG) == coordinator) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(coordinator, SIGKILL);
    waitpid(coordinator, nullptr, 0);
  };
  // Polls the coordinator's port file (another process writes it).
  const fs::path port_file = state / "coordinator.port";
  for (int i = 0; i < 1200 && shared.port == 0; ++i) {
    if (waitpid(coordinator, nullptr, WNOHANG) == coordinator) {
      Die("the coordinator exited at start-up; see " + coordinator_log.string());
    }
    shared.port = std::atoi(ReadFile(port_file).c_str());
    if (shared.port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (shared.port == 0) {
    stop_coordinator();
    Die("the coordinator did not start listening; see " + coordinator_log.string());
  }
  const int64_t idle_rss_kb = ProcStatusKb(coordinator, "VmRSS");
  const int64_t idle_hwm_kb = ProcStatusKb(coordinator, "VmHWM");

  // Samples the coordinator's RSS every 20 ms: the peak of each phase.
  shared.clients = clients;
  std::atomic<bool> sampling{true};
  // Phases: downloads, uploads (until every site's upload was accepted),
  // then closing the round (aggregate, encode, checkpoint).
  std::atomic<bool> uploads_done{false};
  int64_t download_peak_kb = 0, upload_peak_kb = 0, close_peak_kb = 0;
  std::thread sampler([&] {
    while (sampling) {
      const int64_t rss = ProcStatusKb(coordinator, "VmRSS");
      int64_t& peak = uploads_done                              ? close_peak_kb
                      : shared.all_downloaded.HasBeenNotified() ? upload_peak_kb
                                                                : download_peak_kb;
      peak = std::max(peak, rss);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) threads.emplace_back(RunClient, i, std::ref(shared));
  for (std::thread& t : threads) t.join();
  uploads_done = true;

  // The round summary line is logged after aggregation and the checkpoint.
  std::string summary;
  const std::string marker = "round 1/1: " + std::to_string(clients) + " sites";
  for (int i = 0; i < 6000 && summary.empty(); ++i) {
    const std::string text = ReadFile(coordinator_log);
    if (size_t at = text.find(marker); at != std::string::npos) {
      summary = text.substr(at, text.find('\n', at) - at);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  const int64_t peak_kb = ProcStatusKb(coordinator, "VmHWM");
  sampling = false;
  sampler.join();
  stop_coordinator();

  const double model_mib = MiB(shared.model_bytes);
  const double bound_mib = 3 * model_mib + 200;
  const double peak_mib = peak_kb / 1024.0;
  double round_seconds = 0;
  {
    absl::MutexLock lock(&shared.mutex);
    if (shared.accepted > 0) round_seconds = Seconds(shared.last_accepted - shared.first_task);
  }
  std::printf("coordinator_scale: %d clients, nn.Linear(%d, %d), %lld parameters\n", clients,
              in_features, out_features, static_cast<long long>(parameters));
  std::printf("  %-44s %10.1f MiB\n", "model size (encoded)", model_mib);
  std::printf("  %-44s %10d of %d\n", "updates accepted", shared.accepted.load(), clients);
  std::printf("  %-44s %10.2f s\n", "round: first task to last accepted upload", round_seconds);
  std::printf("  %-44s %s\n", "coordinator log", summary.empty() ? "(no round summary)" : summary.c_str());
  std::printf("  %-44s %10.1f MiB\n", "coordinator RSS when listening (idle)", idle_rss_kb / 1024.0);
  std::printf("  %-44s %10.1f MiB\n", "coordinator peak RSS before the round", idle_hwm_kb / 1024.0);
  std::printf("  %-44s %10.1f MiB\n", "coordinator RSS peak while sites download", download_peak_kb / 1024.0);
  std::printf("  %-44s %10.1f MiB\n", "coordinator RSS peak during uploads", upload_peak_kb / 1024.0);
  std::printf("  %-44s %10.1f MiB\n", "coordinator RSS peak closing the round", close_peak_kb / 1024.0);
  std::printf("  %-44s %10.1f MiB\n", "coordinator peak RSS (VmHWM)", peak_mib);
  std::printf("  %-44s %10.1f MiB\n", "bound: 3 x model + 200 MB", bound_mib);
  std::printf("  %-44s %10.2f (%s)\n", "peak / bound", peak_mib / bound_mib,
              peak_mib <= bound_mib ? "within" : "ABOVE");

  const bool failed = shared.failures > 0 || shared.accepted != clients || summary.empty();
  if (keep || failed) {
    std::printf("  files kept in %s\n", tmp.c_str());
  } else {
    fs::remove_all(tmp);
  }
  return failed ? 1 : 0;
}
